#include "runtime/exec/buffer_store.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
#include "runtime/cuda/cuda_backend.h"
#endif

namespace galaxy::rt {

DeviceMemory *deviceMemoryOfBackend(Backend &backend) {
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
  return cuda::deviceMemoryOf(backend);
#else
  (void)backend;
  return nullptr;
#endif
}

BufferStore::~BufferStore() {
  for (void *p : owned_) {
    if (mem_)
      mem_->release(p);
    else
      std::free(p);
  }
}

absl::StatusOr<void *> BufferStore::allocate(size_t bytes, const char *what) {
  bytes = std::max<size_t>(bytes, 64);
  void *p = nullptr;
  if (mem_) {
    absl::StatusOr<void *> d = mem_->allocate(bytes);
    if (!d.ok())
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes for ", what,
                       " on GPU ", mem_->device(), ": ", d.status().message()));
    p = *d;
  } else {
    bytes = (bytes + 63) / 64 * 64; // aligned_alloc wants a multiple
    p = std::aligned_alloc(64, bytes);
    if (!p)
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes for ", what));
    std::memset(p, 0, bytes);
  }
  owned_.push_back(p);
  return p;
}

void *BufferStore::stage(void *dst, size_t bytes) {
  if (!mem_)
    return dst;
  staging_.resize(bytes);
  return staging_.data();
}

absl::Status BufferStore::fromHost(void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || dst == src)
    return absl::OkStatus();
  if (mem_)
    return mem_->copyToDevice(dst, src, bytes);
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<const void *> BufferStore::toHost(const void *src,
                                                 size_t bytes) {
  if (!mem_)
    return src;
  readback_.resize(std::max<size_t>(bytes, 1));
  if (bytes > 0)
    if (absl::Status s = mem_->copyToHost(readback_.data(), src, bytes);
        !s.ok())
      return s;
  return static_cast<const void *>(readback_.data());
}

} // namespace galaxy::rt
