#include "runtime/exec/collectives.h"

#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace galaxy::rt {

namespace {
std::string shapeStr(const std::vector<int64_t> &s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

absl::StatusOr<MoveKind> kindOf(std::string_view kernel) {
  if (kernel == "all_reduce")
    return MoveKind::kAllReduce;
  if (kernel == "all_gather")
    return MoveKind::kAllGather;
  if (kernel == "reduce_scatter")
    return MoveKind::kReduceScatter;
  if (kernel == "slice")
    return MoveKind::kSlice;
  if (kernel == "pad")
    return MoveKind::kPad;
  return absl::InvalidArgumentError(absl::StrCat(
      "'", std::string(kernel), "' is not a data-movement kernel"));
}

std::vector<size_t> counts(const DataMove &m) {
  std::vector<size_t> c;
  for (int64_t s : m.sizes)
    c.push_back(static_cast<size_t>(m.pre * s * m.post));
  return c;
}
} // namespace

bool isDataMovement(std::string_view kernel) { return kindOf(kernel).ok(); }

absl::StatusOr<DataMove> bindDataMove(const plan::Instr &instr,
                                      const std::vector<Tensor> &in,
                                      const std::vector<Tensor> &out, int rank,
                                      int world, std::string_view where) {
  auto bad = [&](const std::string &why) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ": ", instr.kernel(), ": ", why));
  };
  absl::StatusOr<MoveKind> kind = kindOf(instr.kernel());
  if (!kind.ok())
    return bad(std::string(kind.status().message()));
  if (in.size() != 1 || out.size() != 1)
    return bad(absl::StrCat("takes one input and one output, got ", in.size(),
                            " and ", out.size()));
  const Tensor &x = in[0], &y = out[0];
  DataMove m;
  m.kind = *kind;
  m.dtype = x.dtype;
  if (x.dtype != y.dtype)
    return bad("input and output dtypes differ");
  if (m.kind == MoveKind::kReduceScatter && x.dtype != plan::F32)
    return bad("reduce_scatter supports f32 only");
  if (m.kind == MoveKind::kAllReduce) {
    if (x.shape != y.shape)
      return bad(absl::StrCat("input ", shapeStr(x.shape), " and output ",
                              shapeStr(y.shape), " shapes differ"));
    m.numel = x.numel();
    return m;
  }

  auto dimIt = instr.attrs().find("dim");
  auto sizesIt = instr.attrs().find("sizes");
  if (dimIt == instr.attrs().end() || !dimIt->second.has_i())
    return bad("needs an integer attribute 'dim'");
  if (sizesIt == instr.attrs().end() || !sizesIt->second.has_ints())
    return bad("needs an ints attribute 'sizes' (one extent per rank)");
  m.sizes.assign(sizesIt->second.ints().v().begin(),
                 sizesIt->second.ints().v().end());
  if (static_cast<int>(m.sizes.size()) != world)
    return bad(absl::StrCat("'sizes' ", shapeStr(m.sizes), " has ",
                            m.sizes.size(), " entries for a world of ", world));
  int64_t total = 0;
  for (int64_t s : m.sizes) {
    if (s < 0)
      return bad(absl::StrCat("'sizes' ", shapeStr(m.sizes), " is negative"));
    m.offsets.push_back(total);
    total += s;
  }
  // The full tensor is y for all_gather / pad and x for reduce_scatter / slice.
  const bool gather =
      m.kind == MoveKind::kAllGather || m.kind == MoveKind::kPad;
  const Tensor &full = gather ? y : x, &shard = gather ? x : y;
  const int nd = static_cast<int>(full.shape.size());
  int64_t dim = dimIt->second.i();
  if (dim < 0)
    dim += nd;
  if (dim < 0 || dim >= nd)
    return bad(absl::StrCat("'dim' ", dimIt->second.i(), " is outside ",
                            shapeStr(full.shape)));
  std::vector<int64_t> want = full.shape;
  want[dim] = m.sizes[rank];
  if (full.shape[dim] != total || shard.shape != want)
    return bad(absl::StrCat(
        gather ? "input " : "output ", shapeStr(shard.shape), " and ",
        gather ? "output " : "input ", shapeStr(full.shape),
        " do not fit 'sizes' ", shapeStr(m.sizes), " along dim ", dim,
        " (rank ", rank, " expects its shard to be ", shapeStr(want), ")"));
  for (int d = 0; d < dim; ++d)
    m.pre *= full.shape[d];
  for (int d = dim + 1; d < nd; ++d)
    m.post *= full.shape[d];
  return m;
}

absl::Status runDataMove(const DataMove &m, const Tensor &x, const Tensor &y,
                         comm::Communicator *comm, int rank,
                         std::vector<char> &scratch) {
  constexpr size_t kElem = 4; // f32 and i32
  const int world = comm ? comm->size() : 1;
  char *yb = static_cast<char *>(y.data);
  const char *xb = static_cast<const char *>(x.data);
  switch (m.kind) {
  case MoveKind::kAllReduce:
    if (x.data != y.data)
      std::memmove(y.data, x.data, m.numel * kElem);
    if (world == 1)
      return absl::OkStatus();
    return m.dtype == plan::I32 ? comm->allReduceSum(y.i32(), m.numel)
                                : comm->allReduceSum(y.f32(), m.numel);

  case MoveKind::kSlice: {
    const int64_t n = m.sizes[rank] * m.post,
                  stride = m.offsets.back() + m.sizes.back();
    for (int64_t p = 0; p < m.pre; ++p)
      std::memcpy(yb + p * n * kElem,
                  xb + (p * stride + m.offsets[rank]) * m.post * kElem,
                  n * kElem);
    return absl::OkStatus();
  }

  case MoveKind::kPad: { // this rank's shard in a zero tensor: a partial value
    const int64_t n = m.sizes[rank] * m.post,
                  stride = m.offsets.back() + m.sizes.back();
    std::memset(y.data, 0, y.numel() * kElem);
    for (int64_t p = 0; p < m.pre; ++p)
      std::memcpy(yb + (p * stride + m.offsets[rank]) * m.post * kElem,
                  xb + p * n * kElem, n * kElem);
    return absl::OkStatus();
  }

  case MoveKind::kAllGather: {
    if (world == 1) {
      std::memmove(y.data, x.data, y.numel() * kElem);
      return absl::OkStatus();
    }
    const std::vector<size_t> c = counts(m);
    // With pre == 1 the rank-ordered chunks are already y's layout.
    char *dst = yb;
    if (m.pre > 1) {
      scratch.resize(y.numel() * kElem);
      dst = scratch.data();
    }
    absl::Status s = m.dtype == plan::I32
                         ? comm->allGatherV(x.i32(), c[rank],
                                            reinterpret_cast<int32_t *>(dst), c)
                         : comm->allGatherV(x.f32(), c[rank],
                                            reinterpret_cast<float *>(dst), c);
    if (!s.ok() || m.pre == 1)
      return s;
    const int64_t N = m.offsets.back() + m.sizes.back();
    int64_t chunk = 0;
    for (int r = 0; r < world; ++r) {
      const int64_t run = m.sizes[r] * m.post;
      for (int64_t p = 0; p < m.pre; ++p)
        std::memcpy(yb + (p * N + m.offsets[r]) * m.post * kElem,
                    dst + (chunk + p * run) * kElem, run * kElem);
      chunk += c[r];
    }
    return absl::OkStatus();
  }

  case MoveKind::kReduceScatter: {
    if (world == 1) {
      std::memmove(y.data, x.data, y.numel() * kElem);
      return absl::OkStatus();
    }
    const std::vector<size_t> c = counts(m);
    const float *src = x.f32();
    if (m.pre > 1) { // pack each rank's shard contiguously, in rank order
      scratch.resize(x.numel() * kElem);
      const int64_t N = m.offsets.back() + m.sizes.back();
      int64_t chunk = 0;
      for (int r = 0; r < world; ++r) {
        const int64_t run = m.sizes[r] * m.post;
        for (int64_t p = 0; p < m.pre; ++p)
          std::memcpy(scratch.data() + (chunk + p * run) * kElem,
                      xb + (p * N + m.offsets[r]) * m.post * kElem,
                      run * kElem);
        chunk += c[r];
      }
      src = reinterpret_cast<const float *>(scratch.data());
    }
    return comm->reduceScatterV(src, y.f32(), c);
  }
  }
  return absl::InternalError("unknown data move");
}

absl::Status runCoalescedAllReduce(const std::vector<ReduceMember> &members,
                                   comm::Communicator *comm, int world,
                                   std::vector<char> &scratch) {
  int64_t total = 0;
  for (const ReduceMember &m : members)
    total += m.move->numel;
  if (world == 1) {
    for (const ReduceMember &m : members)
      if (m.x.data != m.y.data)
        std::memmove(m.y.data, m.x.data, m.move->numel * sizeof(float));
    return absl::OkStatus();
  }
  scratch.resize(total * sizeof(float));
  float *buf = reinterpret_cast<float *>(scratch.data());
  int64_t at = 0;
  for (const ReduceMember &m : members) {
    std::memcpy(buf + at, m.x.data, m.move->numel * sizeof(float));
    at += m.move->numel;
  }
  if (absl::Status s = comm->allReduceSum(buf, total); !s.ok())
    return s;
  at = 0;
  for (const ReduceMember &m : members) {
    std::memcpy(m.y.data, buf + at, m.move->numel * sizeof(float));
    at += m.move->numel;
  }
  return absl::OkStatus();
}

} // namespace galaxy::rt
