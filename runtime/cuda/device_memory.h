// Memory of a backend whose tensors do not live in host memory (the CUDA
// backend). Free of CUDA headers so the executor can use it from plain C++.
// Proposed to move into runtime/backend.h as `virtual DeviceMemory
// *Backend::deviceMemory() { return nullptr; }`; until then
// cuda::deviceMemoryOf(backend) (runtime/cuda/cuda_backend.h) finds it.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galaxy::rt {

// Every call is ordered after the kernels already run on the backend (one
// stream); copies from the device return once the bytes are on the host.
class DeviceMemory {
public:
  virtual ~DeviceMemory() = default;

  virtual int device() const = 0;
  // Zero-filled device memory, 256-byte aligned; give it back with release().
  virtual absl::StatusOr<void *> allocate(size_t bytes) = 0;
  virtual void release(void *p) = 0;

  virtual absl::Status copyToDevice(void *dst, const void *src,
                                    size_t bytes) = 0;
  virtual absl::Status copyToHost(void *dst, const void *src, size_t bytes) = 0;
  virtual absl::Status copyOnDevice(void *dst, const void *src,
                                    size_t bytes) = 0;
  // `rows` rows of `rowBytes` bytes from src (rows srcPitch bytes apart) to
  // dst (dstPitch apart), both on the device: the executor's slice, pad and
  // gather boxes ([pre, size·post] blocks of [pre, N·post] tensors).
  virtual absl::Status copy2D(void *dst, size_t dstPitch, const void *src,
                              size_t srcPitch, size_t rowBytes,
                              size_t rows) = 0;
  virtual absl::Status fillZero(void *dst, size_t bytes) = 0;
  // Waits for every kernel and copy issued so far; reports a failed kernel.
  virtual absl::Status synchronize() = 0;
  // The cudaStream_t the kernels run on (give it to connectNccl).
  virtual void *stream() const = 0;
};

} // namespace galaxy::rt
