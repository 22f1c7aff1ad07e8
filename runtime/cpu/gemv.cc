#include "runtime/cpu/gemv.h"

#include <immintrin.h>

#include <algorithm>

#include <vector>

#include "runtime/cpu/parallel.h"

namespace galaxy::rt::cpu {
namespace {

// One weight element as fp32: itself, or bfloat16 bits widened.
inline float widen(float v) { return v; }
inline float widen(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

template <typename W>
void rowsScalar(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *x,
                const W *w, float *y, int64_t n, bool accumulate) {
  for (int64_t j = j0; j < j1; ++j)
    for (int64_t r = 0; r < m; ++r) {
      float s = 0.f;
      for (int64_t p = 0; p < k; ++p)
        s += x[r * k + p] * widen(w[j * k + p]);
      y[r * n + j] = accumulate ? y[r * n + j] + s : s;
    }
}

__attribute__((target("avx512f"))) inline __m512 load16(const float *p) {
  return _mm512_loadu_ps(p);
}
__attribute__((target("avx512f"))) inline __m512 load16(const uint16_t *p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Two weight rows at a time against M rows of x: 2·M accumulators of 16
// lanes over k (a multiple of 16 here; the tail is added in order after).
template <int M, typename W>
__attribute__((target("avx512f"))) void
rowsAvx512(int64_t j0, int64_t j1, int64_t k, const float *x, const W *w,
           float *y, int64_t n, bool accumulate) {
  const int64_t k16 = k / 16 * 16;
  auto finish = [&](int64_t j, int r, float s) {
    for (int64_t p = k16; p < k; ++p)
      s += x[r * k + p] * widen(w[j * k + p]);
    y[r * n + j] = accumulate ? y[r * n + j] + s : s;
  };
  int64_t j = j0;
  for (; j + 2 <= j1; j += 2) {
    __m512 a0[M], a1[M];
    for (int r = 0; r < M; ++r)
      a0[r] = a1[r] = _mm512_setzero_ps();
    const W *w0 = w + j * k, *w1 = w0 + k;
    for (int64_t p = 0; p < k16; p += 16) {
      const __m512 v0 = load16(w0 + p), v1 = load16(w1 + p);
      for (int r = 0; r < M; ++r) {
        const __m512 xv = _mm512_loadu_ps(x + r * k + p);
        a0[r] = _mm512_fmadd_ps(xv, v0, a0[r]);
        a1[r] = _mm512_fmadd_ps(xv, v1, a1[r]);
      }
    }
    for (int r = 0; r < M; ++r) {
      finish(j, r, _mm512_reduce_add_ps(a0[r]));
      finish(j + 1, r, _mm512_reduce_add_ps(a1[r]));
    }
  }
  for (; j < j1; ++j) {
    __m512 a0[M];
    for (int r = 0; r < M; ++r)
      a0[r] = _mm512_setzero_ps();
    const W *w0 = w + j * k;
    for (int64_t p = 0; p < k16; p += 16) {
      const __m512 v0 = load16(w0 + p);
      for (int r = 0; r < M; ++r)
        a0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * k + p), v0, a0[r]);
    }
    for (int r = 0; r < M; ++r)
      finish(j, r, _mm512_reduce_add_ps(a0[r]));
  }
}

template <typename W>
void rows(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *x,
          const W *w, float *y, int64_t n, bool accumulate) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512)
    return rowsScalar(m, j0, j1, k, x, w, y, n, accumulate);
  switch (m) {
#define GALAXY_GEMV_CASE(M)                                                    \
  case M:                                                                      \
    return rowsAvx512<M>(j0, j1, k, x, w, y, n, accumulate);
    GALAXY_GEMV_CASE(1)
    GALAXY_GEMV_CASE(2)
    GALAXY_GEMV_CASE(3)
    GALAXY_GEMV_CASE(4)
    GALAXY_GEMV_CASE(5)
    GALAXY_GEMV_CASE(6)
    GALAXY_GEMV_CASE(7)
    GALAXY_GEMV_CASE(8)
#undef GALAXY_GEMV_CASE
  default:
    return rowsScalar(m, j0, j1, k, x, w, y, n, accumulate);
  }
}

template <typename W>
void gemv(int64_t m, int64_t n, int64_t k, const float *x, const W *w, float *y,
          bool accumulate, int threads) {
  // Each output is one thread's, summed in one order: the result does not
  // depend on the thread count. Chunks of whole pairs of weight rows.
  const int64_t pairs = (n + 1) / 2;
  parallelChunks(
      pairs, 2 * k * sizeof(W), threads, [&](int64_t p0, int64_t p1) {
        rows(m, 2 * p0, std::min(n, 2 * p1), k, x, w, y, n, accumulate);
      });
}

} // namespace

void gemvRows(int64_t m, int64_t n, int64_t k, const float *x, const float *w,
              float *y, bool accumulate, int threads) {
  gemv(m, n, k, x, w, y, accumulate, threads);
}

void gemvRowsBf16(int64_t m, int64_t n, int64_t k, const float *x,
                  const uint16_t *w, float *y, bool accumulate, int threads) {
  gemv(m, n, k, x, w, y, accumulate, threads);
}

} // namespace galaxy::rt::cpu
