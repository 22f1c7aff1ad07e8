#include "runtime/cpu/bf16_kernels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/bf16_avx512.h"

namespace galaxy::rt::cpu {
namespace {

// A tile of dw: kTileRows rows (one broadcast of dy each) by kTileCols
// columns (three 16-lane vectors of x): 24 accumulators + 3 + 1 operand
// registers of the 32.
constexpr int kTileRows = 8;
constexpr int kTileCols = 48;

// The packed x one thread sweeps for each row block of dw stays within this
// (half of Zen 4's 1 MiB L2, a third of a Sapphire Rapids core's 2 MiB):
// longer sums take dw's columns in several sweeps.
constexpr int64_t kPanelBytes = 512 << 10;

// Pairs [p0, p1) of x into blocks of kTileCols columns, pair by pair
// ([block][pair][48]: each tile's operand contiguous). Column by column, so
// the stores run along each block (pair by pair they land a block apart).
GALAXY_BF16_TARGET void packX(const float *x, int64_t rows, int64_t k,
                              int64_t pairs, int64_t p0, int64_t p1,
                              uint32_t *xp) {
  const int64_t colBlocks = (k + kTileCols - 1) / kTileCols;
  for (int64_t c = 0; c < colBlocks * kTileCols; c += 16) {
    uint32_t *out = xp + (c / kTileCols) * pairs * kTileCols + c % kTileCols;
    for (int64_t p = p0; p < p1; ++p) {
      const float *r0 = x + 2 * p * k + c;
      _mm512_storeu_si512(
          out + p * kTileCols,
          bf16RowPair(r0, 2 * p + 1 < rows ? r0 + k : nullptr, k - c));
    }
  }
}

// All pairs of dy's columns for dw's row blocks [b0, b1), each block's
// kTileRows columns pair by pair ([block][pair][8]).
GALAXY_BF16_TARGET void packDy(const float *dy, int64_t rows, int64_t n,
                               int64_t pairs, int64_t b0, int64_t b1,
                               uint32_t *dyp) {
  for (int64_t b = b0; b < b1; b += 2) {
    const int64_t c = b * kTileRows;
    uint32_t *out = dyp + b * pairs * kTileRows;
    for (int64_t p = 0; p < pairs; ++p) {
      const float *r0 = dy + 2 * p * n + c;
      const __m512i v =
          bf16RowPair(r0, 2 * p + 1 < rows ? r0 + n : nullptr, n - c);
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + p * kTileRows),
                          _mm512_castsi512_si256(v));
      if (b + 1 < b1)
        _mm256_storeu_si256(
            reinterpret_cast<__m256i *>(out + (pairs + p) * kTileRows),
            _mm512_extracti64x4_epi64(v, 1));
    }
  }
}

// One tile: the sum over all pairs in registers, then the update of the
// `rowsValid` x `colsValid` corner of dw at w (leading dimension ld) and its
// copy at y (may be null). The loops over the tile have constant bounds (the
// corner is a condition inside) so the accumulators stay in registers.
GALAXY_BF16_TARGET void tile(const uint32_t *a, const uint32_t *b,
                             int64_t pairs, int rowsValid, int colsValid,
                             float *w, uint16_t *y, int64_t ld, float alpha,
                             float beta, const float *wNext,
                             const uint16_t *yNext) {
  // The next tile's rows of dw (and its copy) come in during this tile's
  // sum: cold, they stalled each epilogue on memory.
  if (wNext)
    for (int i = 0; i < kTileRows; ++i)
      for (int j = 0; j < kTileCols; j += 16) {
        _mm_prefetch(reinterpret_cast<const char *>(wNext + i * ld + j),
                     _MM_HINT_T0);
        if (yNext && j % 32 == 0)
          _mm_prefetch(reinterpret_cast<const char *>(yNext + i * ld + j),
                       _MM_HINT_T0);
      }
  __m512 acc[kTileRows][3] = {}; // zeros
  for (int64_t p = 0; p < pairs; ++p, a += kTileRows, b += kTileCols) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b),
                   b1 = (__m512bh)_mm512_loadu_si512(b + 16),
                   b2 = (__m512bh)_mm512_loadu_si512(b + 32);
#pragma GCC unroll 8
    for (int i = 0; i < kTileRows; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(a[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], ai, b2);
    }
  }
  // The update as sgd_update writes it: beta·w + alpha·g.
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < kTileRows; ++i) {
    if (i >= rowsValid)
      break;
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) {
      const int cols = colsValid - 16 * j;
      if (cols <= 0)
        break;
      const __mmask16 m =
          cols >= 16 ? __mmask16(0xffff) : __mmask16((1u << cols) - 1);
      float *wp = w + i * ld + 16 * j;
      const __m512 g = _mm512_mul_ps(va, acc[i][j]);
      const __m512 v =
          beta == 0.f ? g
                      : _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, wp), g);
      // Masked stores only where needed: a masked 16-bit store costs several
      // plain ones on Zen 4.
      if (cols >= 16)
        _mm512_storeu_ps(wp, v);
      else
        _mm512_mask_storeu_ps(wp, m, v);
      if (y) {
        uint16_t *yp = y + i * ld + 16 * j;
        if (cols >= 16)
          _mm256_storeu_si256(reinterpret_cast<__m256i *>(yp), bf16Bits16(v));
        else
          _mm256_mask_storeu_epi16(yp, m, bf16Bits16(v));
      }
    }
  }
}

} // namespace

bool bf16KernelsAvailable() {
  static const bool ok = __builtin_cpu_supports("avx512bf16") &&
                         __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vl");
  return ok;
}

void bf16WeightGrad(const float *dy, const float *x, int64_t rows, int64_t n,
                    int64_t k, float alpha, float beta, float *dw,
                    uint16_t *copy, int threads) {
  const int64_t pairs = (rows + 1) / 2,
                rowBlocks = (n + kTileRows - 1) / kTileRows,
                colBlocks = (k + kTileCols - 1) / kTileCols;
  // The calling thread's; every thread reads them.
  thread_local std::vector<uint32_t> dyPacked, xPacked;
  dyPacked.resize(std::max<int64_t>(1, rowBlocks * pairs * kTileRows));
  xPacked.resize(std::max<int64_t>(1, colBlocks * pairs * kTileCols));
  uint32_t *dyp = dyPacked.data(), *xp = xPacked.data();
  const int64_t sweep =
      std::max<int64_t>(1, kPanelBytes / (pairs * kTileCols * 4 + 1));
  // Thread `id` of `count` packs a share of x's pairs and dy for its own row
  // blocks of dw, then (once all of x is packed) sums and updates those rows:
  // one parallel region, as each wakes the sleeping thread.
  auto work = [&](int id, int count) {
    const int64_t rb0 = rowBlocks * id / count,
                  rb1 = rowBlocks * (id + 1) / count;
    packX(x, rows, k, pairs, pairs * id / count, pairs * (id + 1) / count, xp);
    packDy(dy, rows, n, pairs, rb0, rb1, dyp);
    if (count > 1) {
#pragma omp barrier
    }
    // The tiles in order, each prefetching the next one's rows of dw.
    for (int64_t cb0 = 0; cb0 < colBlocks; cb0 += sweep) {
      const int64_t cb1 = std::min(colBlocks, cb0 + sweep);
      for (int64_t rb = rb0; rb < rb1; ++rb)
        for (int64_t cb = cb0; cb < cb1; ++cb) {
          const int64_t off = rb * kTileRows * k + cb * kTileCols;
          // the next tile: along the row block, then the next row block
          const int64_t nrb = cb + 1 < cb1 ? rb : rb + 1,
                        ncb = cb + 1 < cb1 ? cb + 1 : cb0;
          const bool next = nrb < rb1;
          const int64_t noff = nrb * kTileRows * k + ncb * kTileCols;
          tile(dyp + rb * pairs * kTileRows, xp + cb * pairs * kTileCols, pairs,
               int(std::min<int64_t>(kTileRows, n - rb * kTileRows)),
               int(std::min<int64_t>(kTileCols, k - cb * kTileCols)), dw + off,
               copy ? copy + off : nullptr, k, alpha, beta,
               next ? dw + noff : nullptr,
               next && copy ? copy + noff : nullptr);
        }
    }
  };
  // Below ~80 us of work the second thread costs more to wake than it saves
  // (oneThreadMacs in gemm_kernels.cc, when threads sleep).
  const bool parallel =
      threads > 1 && rowBlocks > 1 && rows * n * k >= (int64_t{1} << 22);
  if (!parallel) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(std::min <int64_t>(threads, rowBlocks))
  work(omp_get_thread_num(), omp_get_num_threads());
}

} // namespace galaxy::rt::cpu
