#include "runtime/exec/buffer_store.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>

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

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kMaxAllocation = size_t(1) << 62;
// GALAXY_HUGEPAGES=0 turns the hint off (for A/B measurements).
bool hugePages() {
  static const bool on = [] {
    const char *e = std::getenv("GALAXY_HUGEPAGES");
    return !(e && std::string(e) == "0");
  }();
  return on;
}
} // namespace

absl::StatusOr<void *> BufferStore::allocate(size_t bytes, const char *what) {
  // Plans are size-checked on loading (plan::checkPlanSizes); this keeps the
  // rounding below from wrapping whatever a caller passes.
  if (bytes > kMaxAllocation)
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", bytes, " bytes for ", what, ": more than ",
        kMaxAllocation, " (2^62), so its size is wrong"));
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
    // Big buffers (weights, the arena) on 2 MiB boundaries and marked for
    // transparent huge pages: GEMMs stream whole weight matrices every step,
    // and 4 KiB pages cost TLB misses (Linux's default THP mode is madvise).
    // The size is not rounded up to whole huge pages (a 768x768 weight would
    // grow by 70%): its tail simply stays on small pages.
    const size_t align = bytes >= kHugePage && hugePages() ? kHugePage : 64;
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, align, bytes) != 0)
      p = nullptr;
    if (!p)
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes for ", what));
    if (align == kHugePage)
      (void)madvise(p, bytes, MADV_HUGEPAGE); // a hint; failure is harmless
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
