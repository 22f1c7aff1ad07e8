#include "runtime/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/io/temp_file.h"
#include "runtime/plan/size_limits.h"
#include <nlohmann/json.hpp>

namespace galaxy::io {
namespace {

// The reference implementation refuses larger headers; so do we (guards huge
// allocations).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string shapeStr(const std::vector<int64_t> &shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

std::string errnoStr() { return std::strerror(errno); }

bool parseDType(std::string_view s, StDType *out) {
  static const std::pair<std::string_view, StDType> kNames[] = {
      {"F32", StDType::F32},
      {"F16", StDType::F16},
      {"BF16", StDType::BF16},
      {"I32", StDType::I32},
      {"I64", StDType::I64}};
  for (const auto &[name, dtype] : kNames) {
    if (s == name) {
      *out = dtype;
      return true;
    }
  }
  return false;
}

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: mant · 2^-24 is exact in float.
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Calls fn(srcElementIndex, dstElementIndex, count) for each contiguous run of
// the box `slice` inside a row-major tensor of `shape`.
template <typename Fn>
void forEachRun(const std::vector<int64_t> &shape, const Slice &slice, Fn fn) {
  const size_t rank = shape.size();
  if (rank == 0) {
    fn(0, 0, 1);
    return;
  }
  for (int64_t d : slice.shape)
    if (d == 0)
      return;
  std::vector<int64_t> strides(rank, 1);
  for (size_t d = rank - 1; d > 0; --d)
    strides[d - 1] = strides[d] * shape[d];
  const int64_t run = slice.shape[rank - 1];
  std::vector<int64_t> idx(rank,
                           0); // position inside the slice, last dim unused
  int64_t dst = 0;
  while (true) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d)
      src += (slice.offset[d] + (d + 1 == rank ? 0 : idx[d])) * strides[d];
    fn(src, dst, run);
    dst += run;
    // Advance the odometer over all dims but the last.
    size_t d = rank - 1;
    while (d > 0) {
      --d;
      if (++idx[d] < slice.shape[d])
        break;
      idx[d] = 0;
      if (d == 0)
        return;
    }
    if (rank == 1)
      return;
  }
}

struct Mapping {
  void *addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr)
      munmap(addr, size);
  }
};

} // namespace

std::string_view stDTypeName(StDType dtype) {
  switch (dtype) {
  case StDType::F32:
    return "F32";
  case StDType::F16:
    return "F16";
  case StDType::BF16:
    return "BF16";
  case StDType::I32:
    return "I32";
  case StDType::I64:
    return "I64";
  }
  return "?";
}

int64_t stDTypeSize(StDType dtype) {
  switch (dtype) {
  case StDType::F16:
  case StDType::BF16:
    return 2;
  case StDType::F32:
  case StDType::I32:
    return 4;
  case StDType::I64:
    return 8;
  }
  return 0;
}

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const TensorEntry *SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorEntry &e, std::string_view n) { return e.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

absl::StatusOr<const TensorEntry *>
SafetensorsFile::checked(std::string_view name,
                         const std::vector<int64_t> &expectedShape,
                         const Slice &slice) const {
  const TensorEntry *e = find(name);
  if (!e)
    return absl::NotFoundError(
        absl::StrFormat("missing tensor '%s' in %s", name, path_));
  if (e->shape != expectedShape)
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s' in %s has shape %s, the plan expects %s", name, path_,
        shapeStr(e->shape), shapeStr(expectedShape)));
  if (slice.offset.empty() && slice.shape.empty())
    return e;
  bool ok = slice.offset.size() == e->shape.size() &&
            slice.shape.size() == e->shape.size();
  for (size_t d = 0; ok && d < e->shape.size(); ++d)
    ok = slice.offset[d] >= 0 && slice.shape[d] >= 0 &&
         slice.offset[d] + slice.shape[d] <= e->shape[d];
  if (!ok)
    return absl::InvalidArgumentError(absl::StrFormat(
        "slice offset %s shape %s does not fit tensor '%s' of shape %s in %s",
        shapeStr(slice.offset), shapeStr(slice.shape), name, shapeStr(e->shape),
        path_));
  return e;
}

absl::Status
SafetensorsFile::readF32Into(std::string_view name,
                             const std::vector<int64_t> &expectedShape,
                             const Slice &slice, float *out) const {
  auto e = checked(name, expectedShape, slice);
  if (!e.ok())
    return e.status();
  const TensorEntry &t = **e;
  if (t.dtype != StDType::F32 && t.dtype != StDType::F16 &&
      t.dtype != StDType::BF16)
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor '%s' in %s has dtype %s, expected F32, F16 or BF16", name,
        path_, stDTypeName(t.dtype)));
  const Slice whole{std::vector<int64_t>(t.shape.size(), 0), t.shape};
  const Slice &box = slice.shape.empty() ? whole : slice;
  forEachRun(t.shape, box, [&](int64_t src, int64_t dst, int64_t n) {
    if (t.dtype == StDType::F32) {
      std::memcpy(out + dst, t.data + src * 4, n * 4);
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + (src + i) * 2, 2);
      out[dst + i] = t.dtype == StDType::F16 ? halfToFloat(h) : bf16ToFloat(h);
    }
  });
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>>
SafetensorsFile::readF32(std::string_view name,
                         const std::vector<int64_t> &shape,
                         const Slice &slice) const {
  const auto &dims = slice.shape.empty() ? shape : slice.shape;
  int64_t n = 1;
  for (int64_t d : dims)
    n *= std::max<int64_t>(d, 0);
  std::vector<float> out(n);
  if (absl::Status s = readF32Into(name, shape, slice, out.data()); !s.ok())
    return s;
  return out;
}

absl::StatusOr<std::vector<int32_t>>
SafetensorsFile::readI32(std::string_view name,
                         const std::vector<int64_t> &shape,
                         const Slice &slice) const {
  auto e = checked(name, shape, slice);
  if (!e.ok())
    return e.status();
  const TensorEntry &t = **e;
  if (t.dtype != StDType::I32 && t.dtype != StDType::I64)
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor '%s' in %s has dtype %s, expected I32 or I64",
                        name, path_, stDTypeName(t.dtype)));
  const Slice whole{std::vector<int64_t>(t.shape.size(), 0), t.shape};
  const Slice &box = slice.shape.empty() ? whole : slice;
  int64_t n = 1;
  for (int64_t d : box.shape)
    n *= d;
  std::vector<int32_t> out(n);
  int64_t bad = -1;
  forEachRun(t.shape, box, [&](int64_t src, int64_t dst, int64_t cnt) {
    if (t.dtype == StDType::I32) {
      std::memcpy(out.data() + dst, t.data + src * 4, cnt * 4);
      return;
    }
    for (int64_t i = 0; i < cnt; ++i) {
      int64_t v;
      std::memcpy(&v, t.data + (src + i) * 8, 8);
      if (v < std::numeric_limits<int32_t>::min() ||
          v > std::numeric_limits<int32_t>::max())
        bad = src + i;
      out[dst + i] = static_cast<int32_t>(v);
    }
  });
  if (bad >= 0)
    return absl::OutOfRangeError(absl::StrFormat(
        "tensor '%s' in %s: I64 element %d does not fit in int32", name, path_,
        bad));
  return out;
}

absl::StatusOr<SafetensorsFile> readSafetensors(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::NotFoundError(absl::StrFormat(
        "cannot open safetensors file %s: %s", path, errnoStr()));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    std::string err = errnoStr();
    ::close(fd);
    return absl::InternalError(
        absl::StrFormat("cannot stat %s: %s", path, err));
  }
  const uint64_t fileSize = static_cast<uint64_t>(st.st_size);
  if (fileSize < 8) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is %d bytes, too short for a safetensors file "
                        "(8-byte header length first)",
                        path, fileSize));
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->addr = mmap(nullptr, fileSize, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping->addr == MAP_FAILED) {
    mapping->addr = nullptr;
    return absl::InternalError(
        absl::StrFormat("cannot map %s: %s", path, errnoStr()));
  }
  mapping->size = fileSize;
  const auto *bytes = static_cast<const uint8_t *>(mapping->addr);

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | bytes[i];
  if (headerLen > kMaxHeaderBytes || headerLen > fileSize - 8)
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: header length %d does not fit in the file (%d "
                        "bytes): truncated or not safetensors",
                        path, headerLen, fileSize));
  const char *headerBegin = reinterpret_cast<const char *>(bytes + 8);
  nlohmann::json header =
      nlohmann::json::parse(headerBegin, headerBegin + headerLen, nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: header is not a JSON object: not a safetensors file?", path));

  SafetensorsFile file;
  file.path_ = path;
  const uint8_t *data = bytes + 8 + headerLen;
  const uint64_t dataSize = fileSize - 8 - headerLen;
  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    const nlohmann::json &v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: __metadata__ must be an object of strings", path));
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: __metadata__ value of '%s' must be a string",
                              path, m.key()));
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](std::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s' in %s: %s", name, path, what));
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      return bad("header entry needs dtype, shape and data_offsets");
    TensorEntry e;
    e.name = name;
    if (!v["dtype"].is_string())
      return bad("dtype is not a string");
    const std::string dtype = v["dtype"].get<std::string>();
    if (!parseDType(dtype, &e.dtype))
      return bad(absl::StrCat(
          "dtype ", dtype, " is not supported (F32, F16, BF16, I32, I64 are)"));
    const nlohmann::json &shape = v["shape"];
    if (!shape.is_array())
      return bad("shape is not an array");
    uint64_t numel = 1;
    for (const auto &d : shape) {
      if (!d.is_number_unsigned())
        return bad(absl::StrCat("shape ", shape.dump(),
                                " has a non-integer or negative dim"));
      uint64_t dim = d.get<uint64_t>();
      // The plan's limit on one tensor (size_limits.h): below it, numel x
      // dtype size cannot wrap. F32 [2^40, 2^22] (2^64 bytes) wrapped to 0
      // and was accepted with an empty data range.
      if (dim > uint64_t(plan::kMaxTensorElements) ||
          __builtin_mul_overflow(numel, dim, &numel) ||
          numel > uint64_t(plan::kMaxTensorElements))
        return bad(absl::StrCat("shape ", shape.dump(),
                                " is too large (more than 2^40 elements)"));
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const nlohmann::json &off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      return bad(
          absl::StrCat("data_offsets ", off.dump(), " is not [begin, end]"));
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end)
      return bad(
          absl::StrFormat("data_offsets [%d,%d] has begin > end", begin, end));
    if (end > dataSize)
      return bad(absl::StrFormat(
          "data_offsets [%d,%d] run past the data (%d bytes): file truncated?",
          begin, end, dataSize));
    const uint64_t want = numel * static_cast<uint64_t>(stDTypeSize(e.dtype));
    if (end - begin != want)
      return bad(absl::StrFormat(
          "data_offsets [%d,%d] hold %d bytes, shape %s of %s needs %d", begin,
          end, end - begin, shapeStr(e.shape), dtype, want));
    e.data = data + begin;
    e.nbytes = static_cast<int64_t>(want);
    ranges.push_back({begin, end, file.tensors_.size()});
    file.tensors_.push_back(std::move(e));
  }
  // Gaps are harmless; overlaps mean a corrupt header.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range &a, const Range &b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end)
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: tensors '%s' and '%s' overlap in the data buffer", path,
          file.tensors_[ranges[i - 1].tensor].name,
          file.tensors_[ranges[i].tensor].name));
  }
  // nlohmann's object iterates keys sorted, so tensors_ is already sorted by
  // name.
  file.mapping_ = std::shared_ptr<const void>(mapping, mapping->addr);
  return file;
}

namespace {

absl::Status writeAll(int fd, const void *buf, size_t n,
                      const std::string &tmp) {
  const char *p = static_cast<const char *>(buf);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return absl::InternalError(
          absl::StrFormat("writing %s: %s", tmp, errnoStr()));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

} // namespace

absl::Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].name < tensors[b].name;
  });
  nlohmann::json header = nlohmann::json::object();
  std::vector<int64_t> sizes(tensors.size());
  uint64_t offset = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const TensorToWrite &t = tensors[order[k]];
    if (t.name.empty() || t.name == "__metadata__")
      return absl::InvalidArgumentError(absl::StrFormat(
          "writing %s: invalid tensor name '%s'", path, t.name));
    if (k > 0 && tensors[order[k - 1]].name == t.name)
      return absl::InvalidArgumentError(
          absl::StrFormat("writing %s: tensor '%s' given twice", path, t.name));
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        return absl::InvalidArgumentError(absl::StrFormat(
            "writing %s: tensor '%s' has negative dim in shape %s", path,
            t.name, shapeStr(t.shape)));
      numel *= d;
    }
    const int64_t bytes = numel * stDTypeSize(t.dtype);
    if (bytes > 0 && t.data == nullptr)
      return absl::InvalidArgumentError(
          absl::StrFormat("writing %s: tensor '%s' has no data", path, t.name));
    sizes[order[k]] = bytes;
    header[t.name] = {
        {"dtype", std::string(stDTypeName(t.dtype))},
        {"shape", t.shape},
        {"data_offsets", {offset, offset + static_cast<uint64_t>(bytes)}}};
    offset += static_cast<uint64_t>(bytes);
  }
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference
  // writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t lenBytes[8];
  for (int i = 0; i < 8; ++i)
    lenBytes[i] = static_cast<uint8_t>(
        (static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);

  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty())
    dir = ".";
  std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  int fd = mkstemp(tmp.data());
  if (fd < 0)
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot write %s: creating a temporary file in %s "
                        "failed: %s (does the directory exist?)",
                        path, dir.string(), errnoStr()));
  // Removes the temporary on every failure below and on SIGINT / SIGTERM
  // while it exists.
  TempFileGuard guard(tmp);
  auto fail = [&](absl::Status s) {
    ::close(fd);
    return absl::Status(
        s.code(), absl::StrFormat("cannot write %s: %s", path, s.message()));
  };
  fchmod(fd, 0644);
  if (absl::Status s = writeAll(fd, lenBytes, 8, tmp); !s.ok())
    return fail(s);
  if (absl::Status s = writeAll(fd, text.data(), text.size(), tmp); !s.ok())
    return fail(s);
  runTempFileHookForTesting(tmp);
  for (size_t i : order) {
    if (absl::Status s =
            writeAll(fd, tensors[i].data, static_cast<size_t>(sizes[i]), tmp);
        !s.ok())
      return fail(s);
  }
  if (::fsync(fd) != 0)
    return fail(
        absl::InternalError(absl::StrFormat("fsync %s: %s", tmp, errnoStr())));
  if (::close(fd) != 0) {
    std::string err = errnoStr();
    return absl::InternalError(absl::StrFormat("closing %s: %s", tmp, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errnoStr();
    return absl::InternalError(absl::StrFormat(
        "cannot write %s: rename from %s failed: %s", path, tmp, err));
  }
  guard.release();
  // Persist the rename itself; best effort (some filesystems refuse fsync on
  // directories).
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

} // namespace galaxy::io
