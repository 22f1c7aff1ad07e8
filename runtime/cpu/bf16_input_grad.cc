// bf16InputGrad (bf16_kernels.h): dx = dy·w over bfloat16 operands, fp32
// sums. vdpbf16ps sums pairs along the product's depth, which for dy·w runs
// down w's columns: a pair is rows 2p and 2p+1 of w. Each thread takes a
// share of dx's 64- (or 48-) column panels; a panel of w, a block of pairs at a
// time, is interleaved into pairs in this thread's scratch (within L2) and
// swept by every row tile of dx, whose dy pairs sit side by side in dy's rows
// and are broadcast as they are.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <vector>

#include "runtime/cpu/bf16_avx512.h"
#include "runtime/cpu/bf16_kernels.h"

namespace galaxy::rt::cpu {
namespace {

// The panel of w interleaved into pairs within a quarter of a Zen 4/5 core's
// 1 MiB L2; more pairs are summed in blocks.
constexpr int64_t kPanelBytes = 256 << 10;

// Rows [0, rows) of w taken two by two (an odd last row pairs with zero),
// columns [0, cols), into out[pair][16·V] as 32-bit words: the even row's
// half low, the odd row's high.
template <int V>
GALAXY_BF16_TARGET void packPairs(const uint16_t *w, int64_t ldw, int64_t rows,
                                  int cols, uint32_t *out) {
  __mmask16 m[V];
  for (int j = 0; j < V; ++j)
    m[j] = firstLanes(cols - 16 * j);
  for (int64_t r = 0; r < rows; r += 2, out += 16 * V) {
    const uint16_t *r0 = w + r * ldw, *r1 = r0 + ldw;
    const bool second = r + 1 < rows; // else the last row pairs with zero
    if (r + 16 < rows)                // w comes cold: its rows, 16 ahead
      for (int j = 0; j < 16 * V; j += 32) {
        _mm_prefetch(reinterpret_cast<const char *>(r0 + 16 * ldw + j),
                     _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char *>(r1 + 16 * ldw + j),
                     _MM_HINT_T0);
      }
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) {
      const __m512i lo =
          _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m[j], r0 + 16 * j));
      const __m512i hi = second
                             ? _mm512_cvtepu16_epi32(
                                   _mm256_maskz_loadu_epi16(m[j], r1 + 16 * j))
                             : _mm512_setzero_si512();
      _mm512_store_si512(out + 16 * j,
                         _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
}

// One tile: dx rows [0, rows) x columns [0, cols) = sum (+ dx when `add`),
// the sum over `pairs` of dy's pair words (row i at dy + i·ldd, 32-bit words)
// against the panel.
template <int R, int V>
GALAXY_BF16_TARGET void tile(const Bf16PairWord *dy, int64_t ldd,
                             const uint32_t *panel, int64_t pairs, int rows,
                             int cols, bool add, float *dx, int64_t ldx) {
  __m512 acc[R][V] = {}; // zeros
  const Bf16PairWord *dr[R];
  for (int i = 0; i < R; ++i)
    dr[i] = dy + std::min(i, rows - 1) * ldd; // rows past the end: repeat one
  for (int64_t p = 0; p < pairs; ++p, panel += 16 * V) {
    __m512bh b[V];
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j)
      b[j] = (__m512bh)_mm512_load_si512(panel + 16 * j);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(dr[i][p]));
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], a, b[j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    if (i >= rows)
      break;
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) {
      const int left = cols - 16 * j;
      if (left <= 0)
        break;
      float *o = dx + i * ldx + 16 * j;
      const __mmask16 m = firstLanes(left);
      const __m512 v =
          add ? _mm512_add_ps(acc[i][j], _mm512_maskz_loadu_ps(m, o))
              : acc[i][j];
      if (left >= 16)
        _mm512_storeu_ps(o, v);
      else
        _mm512_mask_storeu_ps(o, m, v);
    }
  }
}

template <int R, int V>
void inputGrad(const uint16_t *dy, const uint16_t *w, float *dx, int64_t m,
               int64_t n, int64_t k, int threads) {
  constexpr int kW = 16 * V;
  const int64_t panels = (k + kW - 1) / kW, tiles = (m + R - 1) / R;
  const int64_t depth = std::max<int64_t>(1, kPanelBytes / (kW * 4)); // pairs
  const int64_t pairs = (n + 1) / 2;
  const Bf16PairWord *dyw = reinterpret_cast<const Bf16PairWord *>(dy);
  auto work = [&](int id, int count) {
    thread_local std::vector<uint32_t> buffer;
    buffer.resize(std::min(depth, pairs) * kW + 16);
    uint32_t *panel = reinterpret_cast<uint32_t *>(
        (reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
    for (int64_t s = panels * id / count; s < panels * (id + 1) / count; ++s) {
      const int64_t c0 = s * kW;
      const int cols = int(std::min<int64_t>(kW, k - c0));
      for (int64_t p0 = 0; p0 < pairs; p0 += depth) {
        const int64_t d = std::min(depth, pairs - p0);
        packPairs<V>(w + 2 * p0 * k + c0, k, std::min(2 * d, n - 2 * p0), cols,
                     panel);
        for (int64_t t = 0; t < tiles; ++t)
          tile<R, V>(dyw + (t * R * n) / 2 + p0, n / 2, panel, d,
                     int(std::min<int64_t>(R, m - t * R)), cols, p0 > 0,
                     dx + t * R * k + c0, k);
      }
      if (pairs == 0) // dy·w over no rows: zeros
        for (int64_t i = 0; i < m; ++i)
          std::fill(dx + i * k + c0, dx + i * k + c0 + cols, 0.f);
    }
  };
  if (threads <= 1 || panels < 2 || m * n * k < (int64_t{1} << 22)) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(std::min <int64_t>(threads, panels))
  work(omp_get_thread_num(), omp_get_num_threads());
}

} // namespace

void bf16InputGrad(const uint16_t *dy, const uint16_t *w, float *dx, int64_t m,
                   int64_t n, int64_t k, int threads) {
  assert(n % 2 == 0 && "dy's pairs are words of its rows: n must be even");
  if (m <= 0 || k <= 0)
    return;
  if (m % 8 == 0 && m % 6 != 0)
    inputGrad<8, 3>(dy, w, dx, m, n, k, threads);
  else
    inputGrad<6, 4>(dy, w, dx, m, n, k, threads);
}

} // namespace galaxy::rt::cpu
