// bf16Linear (bf16_kernels.h): y = x·wᵀ + bias with w's rows as they are kept.
// vdpbf16ps sums pairs along k; w's rows hold those pairs side by side, so a
// tile broadcasts them straight from the copy (no per-call reorder of the
// weights) and x,
// small in training (batch x sequence rows), is the operand packed: its rows
// become the 64 lanes, pair by pair.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/bf16_avx512.h"
#include "runtime/cpu/bf16_kernels.h"

namespace galaxy::rt::cpu {
namespace {

// A tile of yᵀ: kRows rows of w (one broadcast each) by kLanes rows of x
// (four 16-lane vectors): 24 accumulators + 4 + 1 operand registers.
constexpr int kRows = 6;
constexpr int kLanes = 64;

// Rows [16g, 16g+16) of x (rows past m read as zero) into the packed x,
// [block of 64 rows][pair][64 lanes], 16 pairs at a time: each row's 32
// values rounded and joined into 16 pairs, then a transpose so that a store
// is 16 rows' pair.
GALAXY_BF16_TARGET void packRows(const float *x, int64_t m, int64_t k,
                                 int64_t pairs, int64_t g, uint32_t *xp) {
  const int64_t block = 16 * g / kLanes, lane = 16 * g % kLanes;
  uint32_t *out = xp + block * pairs * kLanes + lane;
  for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
    const int64_t left = k - 2 * p0;
    auto mask = [](int64_t n) {
      return n >= 16  ? __mmask16(0xffff)
             : n <= 0 ? __mmask16(0)
                      : __mmask16((1u << n) - 1);
    };
    const __mmask16 m0 = mask(left), m1 = mask(left - 16);
    __m512i v[16];
    for (int r = 0; r < 16; ++r) {
      const int64_t row = 16 * g + r;
      if (row >= m) {
        v[r] = _mm512_setzero_si512();
        continue;
      }
      const float *src = x + row * k + 2 * p0;
      v[r] = bf16Bits32(_mm512_maskz_loadu_ps(m0, src),
                        _mm512_maskz_loadu_ps(m1, src + 16));
    }
    transpose16(v);
    const int64_t n = std::min<int64_t>(16, pairs - p0);
    for (int64_t j = 0; j < n; ++j)
      _mm512_storeu_si512(out + (p0 + j) * kLanes, v[j]);
  }
}

// One tile: yᵀ rows n0.. (w's rows at w, `rowsValid` of them) by x's packed
// block xb (`lanesValid` rows), summed over all pairs, plus the bias, stored
// transposed into y (leading dimension ldy). wNext: the next tile's rows of
// w, fetched during this one's sum (w comes cold from memory).
GALAXY_BF16_TARGET void tile(const Bf16PairWord *w, int64_t ldw,
                             const uint32_t *xb, int64_t pairs,
                             const float *bias, float *y, int64_t ldy,
                             int rowsValid, int lanesValid,
                             const Bf16PairWord *wNext) {
  __m512 acc[kRows][4] = {}; // zeros
  const Bf16PairWord *wr[kRows];
  for (int i = 0; i < kRows; ++i)
    wr[i] = w + std::min(i, rowsValid - 1) * ldw; // rows past n: repeat one
  for (int64_t p = 0; p < pairs; ++p, xb += kLanes) {
    if (wNext && p % 16 == 0)
      for (int i = 0; i < kRows; ++i)
        _mm_prefetch(reinterpret_cast<const char *>(wNext + i * ldw + p),
                     _MM_HINT_T0);
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(xb),
                   b1 = (__m512bh)_mm512_loadu_si512(xb + 16),
                   b2 = (__m512bh)_mm512_loadu_si512(xb + 32),
                   b3 = (__m512bh)_mm512_loadu_si512(xb + 48);
#pragma GCC unroll 6
    for (int i = 0; i < kRows; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(wr[i][p]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], a, b2);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], a, b3);
    }
  }
  alignas(64) float t[kRows][kLanes];
#pragma GCC unroll 6
  for (int i = 0; i < kRows; ++i) {
    const __m512 b = _mm512_set1_ps(bias && i < rowsValid ? bias[i] : 0.f);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      _mm512_store_ps(&t[i][16 * j], _mm512_add_ps(acc[i][j], b));
  }
  for (int l = 0; l < lanesValid; ++l)
    for (int i = 0; i < rowsValid; ++i)
      y[l * ldy + i] = t[i][l];
}

} // namespace

void bf16Linear(const float *x, const uint16_t *w, const float *bias, float *y,
                int64_t m, int64_t n, int64_t k, int threads) {
  const int64_t pairs = k / 2, blocks = (m + kLanes - 1) / kLanes,
                groups = blocks * kLanes / 16,
                rowTiles = (n + kRows - 1) / kRows;
  // k is even (bf16OwnLinear), so each row of w starts on a word.
  const Bf16PairWord *w32 = reinterpret_cast<const Bf16PairWord *>(w);
  // The calling thread's; every thread reads it.
  thread_local std::vector<uint32_t> packed;
  packed.resize(std::max<int64_t>(1, blocks * pairs * kLanes));
  uint32_t *xp = packed.data();
  // Thread `id` of `count` packs a share of x's 16-row groups, then (once all
  // of x is packed) computes its share of w's row tiles against every block.
  auto work = [&](int id, int count) {
    for (int64_t g = groups * id / count; g < groups * (id + 1) / count; ++g)
      packRows(x, m, k, pairs, g, xp);
    if (count > 1) {
#pragma omp barrier
    }
    const int64_t t0 = rowTiles * id / count, t1 = rowTiles * (id + 1) / count;
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t b = 0; b < blocks; ++b) {
        // the next tile's rows: the next row tile, once per row tile
        const bool fetch = b == 0 && t + 1 < t1;
        tile(w32 + t * kRows * pairs, pairs, xp + b * pairs * kLanes, pairs,
             bias ? bias + t * kRows : nullptr, y + b * kLanes * n + t * kRows,
             n, int(std::min<int64_t>(kRows, n - t * kRows)),
             int(std::min<int64_t>(kLanes, m - b * kLanes)),
             fetch ? w32 + (t + 1) * kRows * pairs : nullptr);
      }
  };
  // Below ~80 us of work the second thread costs more to wake than it saves
  // (oneThreadMacs in gemm_kernels.cc, when threads sleep).
  if (threads <= 1 || rowTiles < 2 || m * n * k < (int64_t{1} << 22)) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(std::min <int64_t>(threads, rowTiles))
  work(omp_get_thread_num(), omp_get_num_threads());
}

} // namespace galaxy::rt::cpu
