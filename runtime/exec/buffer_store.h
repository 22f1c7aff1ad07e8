// Where the executor's buffers live: host memory for the CPU backend, the
// backend's DeviceMemory (runtime/cuda/device_memory.h, no CUDA headers) for a
// GPU backend. One interface so the executor has one code path; on the host
// every staging call hands back the buffer itself, so the CPU pays no copy.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/cuda/device_memory.h"

namespace galaxy::rt {

// The DeviceMemory of `backend` when its tensors live on a device, else null
// (always null in a build without GALAXY_EXECUTOR_DEVICE_MEMORY).
DeviceMemory *deviceMemoryOfBackend(Backend &backend);

class BufferStore {
public:
  explicit BufferStore(DeviceMemory *mem) : mem_(mem) {}
  ~BufferStore();
  BufferStore(const BufferStore &) = delete;
  BufferStore &operator=(const BufferStore &) = delete;

  bool onDevice() const { return mem_ != nullptr; }
  DeviceMemory *device() const { return mem_; }

  // Zero-filled, 64-byte aligned (256 on a device); owned by the store.
  absl::StatusOr<void *> allocate(size_t bytes, const char *what);

  // Host memory to build `bytes` of the stored buffer `dst` in: dst itself
  // on the host, else a staging area valid until the next stage() call.
  void *stage(void *dst, size_t bytes);
  // Moves host bytes into a stored buffer (nothing to do when src == dst).
  absl::Status fromHost(void *dst, const void *src, size_t bytes);
  // A host pointer to `bytes` of the stored buffer `src`: src itself on the
  // host, else a copy (waits for the kernels) valid until the next call.
  absl::StatusOr<const void *> toHost(const void *src, size_t bytes);

private:
  DeviceMemory *mem_;
  std::vector<void *> owned_;
  std::vector<char> staging_, readback_;
};

} // namespace galaxy::rt
