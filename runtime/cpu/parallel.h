// Row/element loops split over OpenMP threads only when the work pays for
// waking them.
#pragma once

#include <cstdint>

#include "runtime/cpu/library_env.h"

namespace galaxy::rt::cpu {

// Below this many scalar operations a loop runs on the calling thread: 2^20
// where idle OpenMP threads sleep (waking one costs ~50 us), 2^17 where they
// spin a while first (library_env.h), so the second thread is usually awake:
// dropout's, layer norm's and softmax's passes over BERT-base's 128 x 768
// rows then take both cores (the fp32 step ~2 ms faster on Zen 5, session 11).
inline int64_t parallelWork() {
  static const int64_t work = openmpThreadsSpin() ? 1 << 17 : 1 << 20;
  return work;
}

// Calls f(begin, end) on contiguous static chunks of [0, n); chunk boundaries
// depend only on n and the thread count, so per-chunk results are reproducible
// for a given thread count.
template <typename F>
void parallelChunks(int64_t n, int64_t work_per_item, int threads, F &&f) {
  if (n <= 0)
    return;
  const bool parallel =
      threads > 1 && n > 1 && n * work_per_item >= parallelWork();
  if (!parallel) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t t = threads < n ? threads : n;
#pragma omp parallel for num_threads(t) schedule(static, 1)
  for (int64_t i = 0; i < t; ++i)
    f(n * i / t, n * (i + 1) / t);
}

} // namespace galaxy::rt::cpu
