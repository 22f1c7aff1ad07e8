// bf16BatchedMatmul (bf16_kernels.h): many small products, each packed and
// multiplied by one thread while its operands sit in L1. Attention's scores,
// context and their gradients are such batches (BERT-base's step: 48 heads
// of 32x32x64); oneDNN's batched bf16 primitive ran them at ~80 GFLOP/s, its
// per-matrix set-up costing as much as the products.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/bf16_avx512.h"
#include "runtime/cpu/bf16_kernels.h"

namespace galaxy::rt::cpu {
namespace {

inline __mmask16 lanes(int64_t n) {
  return n >= 16  ? __mmask16(0xffff)
         : n <= 0 ? __mmask16(0)
                  : __mmask16((1u << n) - 1);
}

// op(B) as pairs along k, a row of `ldb` lanes (columns of C, zero past n)
// per pair: bp[p·ldb + j] = (op(B)[2p][j] bits) | (op(B)[2p+1][j] bits) <<
// 16. B is [k][n], or [n][k] when tb (each row's pairs side by side: 16
// rows by 16 pairs transposed at a time).
GALAXY_BF16_TARGET void packB(const float *b, bool tb, int64_t n, int64_t k,
                              int64_t pairs, int64_t ldb, uint32_t *bp) {
  if (!tb) {
    for (int64_t p = 0; p < pairs; ++p)
      for (int64_t j = 0; j < ldb; j += 16) {
        const float *r0 = b + 2 * p * n + j;
        _mm512_storeu_si512(
            bp + p * ldb + j,
            bf16RowPair(r0, 2 * p + 1 < k ? r0 + n : nullptr, n - j));
      }
    return;
  }
  for (int64_t j0 = 0; j0 < ldb; j0 += 16)
    for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
      const int64_t left = k - 2 * p0;
      __m512i v[16];
      for (int r = 0; r < 16; ++r) {
        const float *src = b + (j0 + r) * k + 2 * p0;
        v[r] =
            j0 + r < n
                ? bf16Bits32(_mm512_maskz_loadu_ps(lanes(left), src),
                             _mm512_maskz_loadu_ps(lanes(left - 16), src + 16))
                : _mm512_setzero_si512();
      }
      transpose16(v);
      for (int64_t q = 0; q < std::min<int64_t>(16, pairs - p0); ++q)
        _mm512_storeu_si512(bp + (p0 + q) * ldb + j0, v[q]);
    }
}

// op(A)'s pairs along k for broadcasting: row i's pair p at ap[i·si + p·sp].
// A is [m][k] (its rows rounded in place: si = pairs rounded up to 16, sp =
// 1) or [k][m] when ta (rows 2p and 2p+1 joined lane by lane: si = 1, sp = m
// rounded up to 16).
GALAXY_BF16_TARGET void packA(const float *a, bool ta, int64_t m, int64_t k,
                              int64_t pairs, int64_t si, int64_t sp,
                              uint32_t *ap) {
  if (ta) {
    for (int64_t p = 0; p < pairs; ++p)
      for (int64_t i = 0; i < sp; i += 16) {
        const float *r0 = a + 2 * p * m + i;
        _mm512_storeu_si512(
            ap + p * sp + i,
            bf16RowPair(r0, 2 * p + 1 < k ? r0 + m : nullptr, m - i));
      }
    return;
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < si; p += 16) {
      const float *src = a + i * k + 2 * p;
      const int64_t left = k - 2 * p;
      _mm512_storeu_si512(
          ap + i * si + p,
          bf16Bits32(_mm512_maskz_loadu_ps(lanes(left), src),
                     _mm512_maskz_loadu_ps(lanes(left - 16), src + 16)));
    }
}

// Rows [i0, i0 + kR) (`rows` of them valid) by columns [j0, j0 + 16·kV)
// (`cols` valid) of C = alpha·op(A)·op(B).
template <int kR, int kV>
GALAXY_BF16_TARGET void tile(const uint32_t *ap, int64_t si, int64_t sp,
                             const uint32_t *bp, int64_t ldb, int64_t pairs,
                             float alpha, float *c, int64_t ldc, int rows,
                             int cols) {
  __m512 acc[kR][kV];
  for (int r = 0; r < kR; ++r)
    for (int v = 0; v < kV; ++v)
      acc[r][v] = _mm512_setzero_ps();
  const uint32_t *ar[kR];
  for (int r = 0; r < kR; ++r)
    ar[r] = ap + std::min(r, rows - 1) * si; // rows past m: repeat one
  for (int64_t p = 0, off = 0; p < pairs; ++p, off += sp, bp += ldb) {
    __m512bh bv[kV];
    for (int v = 0; v < kV; ++v)
      bv[v] = (__m512bh)_mm512_loadu_si512(bp + 16 * v);
    for (int r = 0; r < kR; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(ar[r][off]));
      for (int v = 0; v < kV; ++v)
        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, bv[v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < kR; ++r) {
    if (r >= rows)
      break;
    for (int v = 0; v < kV; ++v) {
      const int left = cols - 16 * v;
      if (left <= 0)
        break;
      float *cp = c + r * ldc + 16 * v;
      const __m512 y = _mm512_mul_ps(va, acc[r][v]);
      if (left >= 16)
        _mm512_storeu_ps(cp, y);
      else
        _mm512_mask_storeu_ps(cp, lanes(left), y);
    }
  }
}

// All of one matrix's tiles, kV vectors (16·kV columns) per tile.
template <int kR, int kV>
GALAXY_BF16_TARGET void tiles(const uint32_t *ap, int64_t si, int64_t sp,
                              const uint32_t *bp, int64_t ldb, int64_t pairs,
                              float alpha, float *c, int64_t m, int64_t n) {
  for (int64_t j = 0; j < n; j += 16 * kV)
    for (int64_t i = 0; i < m; i += kR)
      tile<kR, kV>(ap + i * si, si, sp, bp + j, ldb, pairs, alpha,
                   c + i * n + j, n, int(std::min<int64_t>(kR, m - i)),
                   int(std::min<int64_t>(16 * kV, n - j)));
}

} // namespace

void bf16BatchedMatmul(int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, float alpha, const float *a, const float *b,
                       float *c, int threads) {
  const int64_t pairs = (k + 1) / 2, ldb = (n + 15) / 16 * 16,
                mPad = (m + 15) / 16 * 16, pairsPad = (pairs + 15) / 16 * 16;
  const int64_t si = ta ? 1 : pairsPad, sp = ta ? mPad : 1;
  auto work = [&](int64_t i0, int64_t i1) {
    thread_local std::vector<uint32_t> apv, bpv;
    apv.resize(std::max(m * pairsPad, pairs * mPad));
    bpv.resize(pairs * ldb);
    for (int64_t i = i0; i < i1; ++i) {
      packA(a + i * m * k, ta, m, k, pairs, si, sp, apv.data());
      packB(b + i * k * n, tb, n, k, pairs, ldb, bpv.data());
      float *ci = c + i * m * n;
      // As many columns per tile as C has, up to 64; rows to fill 24
      // accumulators.
      if (n <= 16)
        tiles<12, 1>(apv.data(), si, sp, bpv.data(), ldb, pairs, alpha, ci, m,
                     n);
      else if (n <= 32)
        tiles<12, 2>(apv.data(), si, sp, bpv.data(), ldb, pairs, alpha, ci, m,
                     n);
      else if (n <= 48)
        tiles<8, 3>(apv.data(), si, sp, bpv.data(), ldb, pairs, alpha, ci, m,
                    n);
      else
        tiles<6, 4>(apv.data(), si, sp, bpv.data(), ldb, pairs, alpha, ci, m,
                    n);
    }
  };
  const int64_t t = std::min<int64_t>(threads, batch);
  if (t <= 1 || batch * m * n * k < kBf16BatchedTwoThreadMacs) {
    work(0, batch);
    return;
  }
#pragma omp parallel for num_threads(t) schedule(static, 1)
  for (int64_t i = 0; i < t; ++i)
    work(batch * i / t, batch * (i + 1) / t);
}

} // namespace galaxy::rt::cpu
