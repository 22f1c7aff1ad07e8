// The safetensors reader (runtime/io/safetensors.cpp): readSafetensors on any
// bytes, then every tensor it accepts read whole and as a slice, as F32 and
// as I32. Properties: no crash or UB; each accepted tensor's bytes are
// exactly shape x dtype size and lie inside the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/io/safetensors.h"
#include "tests/fuzz/fuzz_file.h"

using namespace galaxy::io;
using galaxy::fuzz::violated;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  galaxy::fuzz::MemFile file(data, size);
  absl::StatusOr<SafetensorsFile> f = readSafetensors(file.path());
  if (!f.ok())
    return 0;
  for (const TensorEntry &t : f->tensors()) {
    // Exact arithmetic: the reader's own products must not have wrapped.
    __int128 numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        violated("negative dim accepted in '" + t.name + "'");
      numel *= d;
      if (numel > (__int128(1) << 64))
        violated("tensor '" + t.name + "' accepted with > 2^64 elements");
    }
    const __int128 bytes = numel * stDTypeSize(t.dtype);
    if (bytes != t.nbytes)
      violated("tensor '" + t.name + "' holds " + std::to_string(t.nbytes) +
               " bytes, its shape and dtype need more");
    if (t.nbytes > int64_t(size))
      violated("tensor '" + t.name + "' is larger than the file");
    Slice tail;
    for (int64_t d : t.shape) {
      tail.offset.push_back(d / 2);
      tail.shape.push_back(d - d / 2);
    }
    const bool isFloat = t.dtype == StDType::F32 || t.dtype == StDType::F16 ||
                         t.dtype == StDType::BF16;
    for (const Slice &s : {Slice{}, tail}) {
      if (isFloat) {
        absl::StatusOr<std::vector<float>> v = f->readF32(t.name, t.shape, s);
        if (!v.ok())
          violated("readF32 of an accepted tensor failed: " +
                   std::string(v.status().message()));
      } else {
        absl::StatusOr<std::vector<int32_t>> v = f->readI32(t.name, t.shape, s);
        (void)v; // I64 values past int32 are an error, not a crash
      }
    }
  }
  return 0;
}
