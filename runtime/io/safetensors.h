// Hugging Face safetensors: read (validated, memory-mapped) and write (atomic).
// Format: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {...}}, then the data buffer; offsets are relative to the start of the data
// buffer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galaxy::io {

enum class StDType { F32, F16, BF16, I32, I64 };

// "F32", "F16", ... as spelled in the header.
std::string_view stDTypeName(StDType dtype);
int64_t stDTypeSize(StDType dtype);

// One tensor of an open file. `data` points into the mapped file.
struct TensorEntry {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  int64_t nbytes = 0;

  int64_t numel() const;
};

// A box inside a tensor: per dim, where it starts and how long it is.
// Empty offset and shape mean the whole tensor.
struct Slice {
  std::vector<int64_t> offset;
  std::vector<int64_t> shape;
};

class SafetensorsFile {
public:
  SafetensorsFile() = default;
  SafetensorsFile(SafetensorsFile &&) noexcept = default;
  SafetensorsFile &operator=(SafetensorsFile &&) noexcept = default;

  const std::string &path() const { return path_; }
  // Sorted by name.
  const std::vector<TensorEntry> &tensors() const { return tensors_; }
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }
  // nullptr when absent.
  const TensorEntry *find(std::string_view name) const;

  // Fetches tensor `name` as float (F32, F16 and BF16 are converted), checking
  // that its shape equals `expectedShape`, and returns only `slice` of it
  // (row-major).
  absl::StatusOr<std::vector<float>>
  readF32(std::string_view name, const std::vector<int64_t> &expectedShape,
          const Slice &slice = {}) const;
  // Same, into caller memory of exactly the slice's element count.
  absl::Status readF32Into(std::string_view name,
                           const std::vector<int64_t> &expectedShape,
                           const Slice &slice, float *out) const;
  // Fetches an I32 or I64 tensor as int32 (I64 values must fit).
  absl::StatusOr<std::vector<int32_t>>
  readI32(std::string_view name, const std::vector<int64_t> &expectedShape,
          const Slice &slice = {}) const;

private:
  friend absl::StatusOr<SafetensorsFile>
  readSafetensors(const std::string &path);
  absl::StatusOr<const TensorEntry *>
  checked(std::string_view name, const std::vector<int64_t> &expectedShape,
          const Slice &slice) const;

  std::string path_;
  std::shared_ptr<const void>
      mapping_; // keeps the file mapped while entries point into it
  std::vector<TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Opens and validates a safetensors file: header length and JSON, dtypes,
// shapes, offsets in range and not overlapping, sizes matching shape × dtype.
absl::StatusOr<SafetensorsFile> readSafetensors(const std::string &path);

// A tensor to write; `data` holds numel × dtype size bytes, row-major.
struct TensorToWrite {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
};

// Writes `tensors` (header and data sorted by name) atomically: a temporary
// file in the target's directory is written, fsynced and renamed over `path`;
// on any failure the temporary is removed and `path` is left as it was.
absl::Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata = {});

} // namespace galaxy::io
