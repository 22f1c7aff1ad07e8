#include "runtime/cpu/vector_loops.h"

#include <cmath>
#include <initializer_list>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runtime/cpu/bf16_bits.h"
#include "runtime/cpu/fast_math.h"
#include "runtime/cpu/philox.h"

// AVX-512, AVX2+FMA and baseline copies of each function, chosen once at load
// time by the CPU's features (GCC/Clang function multiversioning via ifunc).
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define GALAXY_CPU_MULTIVERSION                                                \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef GALAXY_CPU_MULTIVERSION
#define GALAXY_CPU_MULTIVERSION
#endif

namespace galaxy::rt::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kGeluCubic = 0.044715f;

// Reductions keep kLanes partial sums combined in a fixed order: they
// vectorise without -ffast-math and give the same bits on every ISA copy
// (up to FMA contraction).
constexpr int kLanes = 16;

inline float combine(const float *acc) {
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l)
    s += acc[l];
  return s;
}

// The kLanes partial sums as two 8-wide GCC vectors: the same per-lane order
// as a float[16] loop, but GCC 12's generic-tuned vectoriser turned that loop
// into shuffle-heavy code in the AVX2 clone (4x slower than this in
// layer_norm_grad); explicit vectors compile to plain loads and adds.
// The baseline copy has no AVX: GCC warns that passing Vec8 by value would
// differ in ABI, which cannot matter for always-inlined internal helpers.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float Vec8 __attribute__((vector_size(32), aligned(4)));
static_assert(kLanes == 16, "two Vec8 accumulators");

// Always inlined, so the 32-byte vector never crosses a call in the baseline
// (non-AVX) copy.
__attribute__((always_inline)) inline Vec8 load8(const float *p) {
  Vec8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline float sum(const float *x, int64_t n) {
  Vec8 lo = {}, hi = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    lo += load8(x + j);
    hi += load8(x + j + 8);
  }
  float acc[kLanes];
  __builtin_memcpy(acc, &lo, sizeof lo);
  __builtin_memcpy(acc + 8, &hi, sizeof hi);
  for (int l = 0; j < n; ++j, ++l)
    acc[l] += x[j];
  return combine(acc);
}

inline float centredSquares(const float *x, int64_t n, float mu) {
  Vec8 lo = {}, hi = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Vec8 a = load8(x + j) - mu, b = load8(x + j + 8) - mu;
    lo += a * a;
    hi += b * b;
  }
  float acc[kLanes];
  __builtin_memcpy(acc, &lo, sizeof lo);
  __builtin_memcpy(acc + 8, &hi, sizeof hi);
  for (int l = 0; j < n; ++j, ++l)
    acc[l] += (x[j] - mu) * (x[j] - mu);
  return combine(acc);
}

// Two passes (mean, then centred squares): stable for rows with large means.
inline void rowStats(const float *x, int64_t h, float eps, float *mean,
                     float *rstd) {
  const float mu = sum(x, h) / static_cast<float>(h);
  *mean = mu;
  *rstd =
      1.f / std::sqrt(centredSquares(x, h, mu) / static_cast<float>(h) + eps);
}

} // namespace

GALAXY_CPU_MULTIVERSION
void geluSpan(const float *x, float *y, int64_t n, bool tanh_approx) {
  if (tanh_approx) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v *
             (1.f + fastTanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v)));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.f + fastErf(v * kInvSqrt2));
    }
  }
}

GALAXY_CPU_MULTIVERSION
void siluSpan(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] / (1.f + fastExp(-x[i]));
}

GALAXY_CPU_MULTIVERSION
void siluGradSpan(const float *x, const float *dy, float *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = 1.f / (1.f + fastExp(-x[i]));
    dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
  }
}

GALAXY_CPU_MULTIVERSION
void geluGradSpan(const float *x, const float *dy, float *dx, int64_t n,
                  bool tanh_approx) {
  if (tanh_approx) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      const float t = fastTanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v));
      const float dinner = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * v * v);
      dx[i] = dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * dinner);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      const float cdf = 0.5f * (1.f + fastErf(v * kInvSqrt2));
      const float pdf = kInvSqrt2Pi * fastExp(-0.5f * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  }
}

GALAXY_CPU_MULTIVERSION
void layerNormRow(const float *x, const float *gamma, const float *beta,
                  float *y, int64_t h, float eps, float *mean, float *rstd) {
  float mu, rs;
  rowStats(x, h, eps, &mu, &rs);
  for (int64_t j = 0; j < h; ++j)
    y[j] = (x[j] - mu) * rs * gamma[j] + beta[j];
  *mean = mu;
  *rstd = rs;
}

GALAXY_CPU_MULTIVERSION
void layerNormGradRow(const float *x, const float *gamma, const float *dy,
                      float *dx, int64_t h, float eps, float *mean,
                      float *rstd) {
  float mu, rs;
  rowStats(x, h, eps, &mu, &rs);
  // dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), dxhat = dy·gamma.
  Vec8 a1lo = {}, a1hi = {}, a2lo = {}, a2hi = {};
  int64_t j = 0;
  for (; j + kLanes <= h; j += kLanes) {
    const Vec8 dlo = load8(dy + j) * load8(gamma + j),
               dhi = load8(dy + j + 8) * load8(gamma + j + 8);
    a1lo += dlo;
    a1hi += dhi;
    a2lo += dlo * (load8(x + j) - mu) * rs;
    a2hi += dhi * (load8(x + j + 8) - mu) * rs;
  }
  float a1[kLanes], a2[kLanes];
  __builtin_memcpy(a1, &a1lo, sizeof a1lo);
  __builtin_memcpy(a1 + 8, &a1hi, sizeof a1hi);
  __builtin_memcpy(a2, &a2lo, sizeof a2lo);
  __builtin_memcpy(a2 + 8, &a2hi, sizeof a2hi);
  for (int l = 0; j < h; ++j, ++l) {
    const float dxhat = dy[j] * gamma[j];
    a1[l] += dxhat;
    a2[l] += dxhat * (x[j] - mu) * rs;
  }
  const float s1 = combine(a1) / static_cast<float>(h);
  const float s2 = combine(a2) / static_cast<float>(h);
  for (j = 0; j < h; ++j)
    dx[j] = rs * (dy[j] * gamma[j] - s1 - (x[j] - mu) * rs * s2);
  *mean = mu;
  *rstd = rs;
}

GALAXY_CPU_MULTIVERSION
void layerNormParamGradCols(const float *x, const float *dy, const float *mean,
                            const float *rstd, int64_t rows, int64_t h,
                            int64_t j0, int64_t j1, float *dgamma,
                            float *dbeta) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * h, *gr = dy + r * h;
    const float mu = mean[r], rs = rstd[r];
    for (int64_t j = j0; j < j1; ++j) {
      dgamma[j] += gr[j] * (xr[j] - mu) * rs;
      dbeta[j] += gr[j];
    }
  }
}

GALAXY_CPU_MULTIVERSION
void softmaxInPlace(float *out, int64_t n) {
  float mx = -INFINITY;
  for (int64_t k = 0; k < n; ++k)
    mx = out[k] > mx ? out[k] : mx;
  for (int64_t k = 0; k < n; ++k)
    out[k] = fastExp(out[k] - mx);
  const float inv = n > 0 ? 1.f / sum(out, n) : 0.f;
  for (int64_t k = 0; k < n; ++k)
    out[k] *= inv;
}

GALAXY_CPU_MULTIVERSION
void sgdSpan(float *p, const float *g, int64_t n, float lr, float wd) {
  if (wd == 0.f) {
    for (int64_t i = 0; i < n; ++i)
      p[i] -= lr * g[i];
  } else {
    for (int64_t i = 0; i < n; ++i)
      p[i] -= lr * (g[i] + wd * p[i]);
  }
}

GALAXY_CPU_MULTIVERSION
void adamwSpan(float *p, const float *g, float *m, float *v, int64_t n,
               float decay, float b1, float one_b1, float b2, float one_b2,
               float step_size, float bc2_sqrt, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + one_b1 * gi;
    const float vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
  }
}

namespace {

GALAXY_CPU_MULTIVERSION
void dropoutBlocksPortable(const float *x, float *y, int64_t blocks,
                           uint64_t q0, uint64_t seed, uint64_t step,
                           uint32_t op_id, uint32_t threshold, float keep) {
  // Philox4x32-10 as in philox.h, on kGroup counters side by side.
  constexpr int kGroup = 16;
  int64_t b = 0;
  for (; b + kGroup <= blocks; b += kGroup) {
    uint32_t c0[kGroup], c1[kGroup], c2[kGroup], c3[kGroup];
    for (int l = 0; l < kGroup; ++l) {
      const uint64_t q = q0 + b + l;
      c0[l] = static_cast<uint32_t>(q);
      c1[l] = static_cast<uint32_t>(q >> 32);
      c2[l] = static_cast<uint32_t>(step);
      c3[l] = static_cast<uint32_t>(seed >> 32);
    }
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = op_id;
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += kPhiloxWeyl0;
        k1 += kPhiloxWeyl1;
      }
      // Kept as a loop (not unrolled into scalars) so it becomes vpmuludq.
#pragma GCC unroll 1
      for (int l = 0; l < kGroup; ++l) {
        const uint64_t p0 = static_cast<uint64_t>(kPhiloxMul0) * c0[l];
        const uint64_t p1 = static_cast<uint64_t>(kPhiloxMul1) * c2[l];
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
        const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = static_cast<uint32_t>(p1);
        c3[l] = static_cast<uint32_t>(p0);
        c0[l] = n0;
        c2[l] = n2;
      }
    }
    const float *xb = x + 4 * b;
    float *yb = y + 4 * b;
    for (int l = 0; l < kGroup; ++l) {
      yb[4 * l + 0] = (c0[l] >> 8) >= threshold ? xb[4 * l + 0] / keep : 0.f;
      yb[4 * l + 1] = (c1[l] >> 8) >= threshold ? xb[4 * l + 1] / keep : 0.f;
      yb[4 * l + 2] = (c2[l] >> 8) >= threshold ? xb[4 * l + 2] / keep : 0.f;
      yb[4 * l + 3] = (c3[l] >> 8) >= threshold ? xb[4 * l + 3] / keep : 0.f;
    }
  }
  for (; b < blocks; ++b) {
    const Philox4x32Words w = dropoutBlock(seed, step, op_id, q0 + b);
    for (int lane = 0; lane < 4; ++lane)
      y[4 * b + lane] =
          (w.w[lane] >> 8) >= threshold ? x[4 * b + lane] / keep : 0.f;
  }
}

#if defined(__x86_64__)
// The same draws with AVX-512 intrinsics: 16 Philox blocks (64 elements) per
// iteration, 32-bit lanes. GCC's auto-vectorised loop above spends most of
// its time moving words between the four counter arrays and the interleaved
// output (2.2 ns an element on a Xeon); here the keep bits of the four words
// are compared as masks and interleaved with pdep into one bit per element,
// which drives masked divides.
#define GALAXY_AVX512 __attribute__((target("avx512f,avx512bw,bmi2")))

// mulhilo of 16 u32 lanes by a constant: even lanes from one vpmuludq, odd
// lanes from another on the words shifted down.
GALAXY_AVX512 inline void mulHiLo16(__m512i a, __m512i m, __m512i &hi,
                                    __m512i &lo) {
  constexpr __mmask16 kOdd = 0xAAAA;
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  hi = _mm512_mask_blend_epi32(kOdd, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(kOdd, even, _mm512_slli_epi64(odd, 32));
}

// One keep bit per lane: (word >> 8) >= threshold.
GALAXY_AVX512 inline uint64_t keepBits16(__m512i w, __m512i threshold) {
  return static_cast<uint64_t>(
      _mm512_cmpge_epu32_mask(_mm512_srli_epi32(w, 8), threshold));
}

GALAXY_AVX512 void dropoutBlocksAvx512(const float *x, float *y, int64_t blocks,
                                       uint64_t q0, uint64_t seed,
                                       uint64_t step, uint32_t op_id,
                                       uint32_t threshold, float keep) {
  const __m512i lanes =
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i mul0 = _mm512_set1_epi32(int(kPhiloxMul0)),
                mul1 = _mm512_set1_epi32(int(kPhiloxMul1));
  const __m512i thr = _mm512_set1_epi32(int(threshold));
  const __m512 keepv = _mm512_set1_ps(keep);
  int64_t b = 0;
  for (; b + 16 <= blocks; b += 16) {
    const uint64_t q = q0 + b;
    const __m512i qlo = _mm512_set1_epi32(int(uint32_t(q)));
    __m512i c0 = _mm512_add_epi32(qlo, lanes);
    // Lanes whose low word wrapped carry into the high word.
    const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, qlo);
    const __m512i qhi = _mm512_set1_epi32(int(uint32_t(q >> 32)));
    __m512i c1 = _mm512_mask_add_epi32(qhi, carry, qhi, _mm512_set1_epi32(1));
    __m512i c2 = _mm512_set1_epi32(int(uint32_t(step)));
    __m512i c3 = _mm512_set1_epi32(int(uint32_t(seed >> 32)));
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = op_id;
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += kPhiloxWeyl0;
        k1 += kPhiloxWeyl1;
      }
      __m512i hi0, lo0, hi1, lo1;
      mulHiLo16(c0, mul0, hi0, lo0);
      mulHiLo16(c2, mul1, hi1, lo1);
      // 0x96 = a ^ b ^ c.
      c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32(int(k0)), 0x96);
      c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32(int(k1)), 0x96);
      c1 = lo1;
      c3 = lo0;
    }
    // Element 4l + j keeps when word j of block l does.
    const uint64_t bits =
        _pdep_u64(keepBits16(c0, thr), 0x1111111111111111ull) |
        _pdep_u64(keepBits16(c1, thr), 0x2222222222222222ull) |
        _pdep_u64(keepBits16(c2, thr), 0x4444444444444444ull) |
        _pdep_u64(keepBits16(c3, thr), 0x8888888888888888ull);
    for (int i = 0; i < 4; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + 4 * b + 16 * i);
      _mm512_storeu_ps(
          y + 4 * b + 16 * i,
          _mm512_maskz_div_ps(__mmask16(bits >> (16 * i)), xv, keepv));
    }
  }
  if (b < blocks)
    dropoutBlocksPortable(x + 4 * b, y + 4 * b, blocks - b, q0 + b, seed, step,
                          op_id, threshold, keep);
}

#define GALAXY_AVX2 __attribute__((target("avx2")))

GALAXY_AVX2 inline void mulHiLo8(__m256i a, __m256i m, __m256i &hi,
                                 __m256i &lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// The AVX2 copy: 8 blocks (32 elements) per iteration. Keep masks are lanes of
// all ones; a 4x8 transpose (unpack, then 128-bit halves) puts word j of block
// l at element 4l + j. No pdep: it is microcoded on AMD before Zen 3.
GALAXY_AVX2 void dropoutBlocksAvx2(const float *x, float *y, int64_t blocks,
                                   uint64_t q0, uint64_t seed, uint64_t step,
                                   uint32_t op_id, uint32_t threshold,
                                   float keep) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mul0 = _mm256_set1_epi32(int(kPhiloxMul0)),
                mul1 = _mm256_set1_epi32(int(kPhiloxMul1));
  // (word >> 8) < 2^24 and threshold <= 2^24: a signed compare is exact.
  const __m256i below = _mm256_set1_epi32(int(threshold) - 1);
  const __m256i bias = _mm256_set1_epi32(int(0x80000000u));
  const __m256 keepv = _mm256_set1_ps(keep);
  int64_t b = 0;
  for (; b + 8 <= blocks; b += 8) {
    const uint64_t q = q0 + b;
    const __m256i qlo = _mm256_set1_epi32(int(uint32_t(q)));
    __m256i c0 = _mm256_add_epi32(qlo, lanes);
    // Unsigned c0 < qlo (the low word wrapped): compare with the sign bit
    // flipped; the all-ones lanes subtract -1 from the high word.
    const __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(qlo, bias),
                                             _mm256_xor_si256(c0, bias));
    __m256i c1 =
        _mm256_sub_epi32(_mm256_set1_epi32(int(uint32_t(q >> 32))), carry);
    __m256i c2 = _mm256_set1_epi32(int(uint32_t(step)));
    __m256i c3 = _mm256_set1_epi32(int(uint32_t(seed >> 32)));
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = op_id;
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += kPhiloxWeyl0;
        k1 += kPhiloxWeyl1;
      }
      __m256i hi0, lo0, hi1, lo1;
      mulHiLo8(c0, mul0, hi0, lo0);
      mulHiLo8(c2, mul1, hi1, lo1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1),
                            _mm256_set1_epi32(int(k0)));
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3),
                            _mm256_set1_epi32(int(k1)));
      c1 = lo1;
      c3 = lo0;
    }
    __m256i m[4] = {c0, c1, c2, c3};
    for (__m256i &w : m)
      w = _mm256_cmpgt_epi32(_mm256_srli_epi32(w, 8), below);
    const __m256i t0 = _mm256_unpacklo_epi32(m[0], m[1]),
                  t1 = _mm256_unpacklo_epi32(m[2], m[3]),
                  t2 = _mm256_unpackhi_epi32(m[0], m[1]),
                  t3 = _mm256_unpackhi_epi32(m[2], m[3]);
    // u_i holds blocks i and i + 4, four words each.
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t1),
                  u1 = _mm256_unpackhi_epi64(t0, t1),
                  u2 = _mm256_unpacklo_epi64(t2, t3),
                  u3 = _mm256_unpackhi_epi64(t2, t3);
    const __m256i out[4] = {_mm256_permute2x128_si256(u0, u1, 0x20),
                            _mm256_permute2x128_si256(u2, u3, 0x20),
                            _mm256_permute2x128_si256(u0, u1, 0x31),
                            _mm256_permute2x128_si256(u2, u3, 0x31)};
    for (int i = 0; i < 4; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + 4 * b + 8 * i);
      _mm256_storeu_ps(
          y + 4 * b + 8 * i,
          _mm256_and_ps(_mm256_div_ps(xv, keepv), _mm256_castsi256_ps(out[i])));
    }
  }
  if (b < blocks)
    dropoutBlocksPortable(x + 4 * b, y + 4 * b, blocks - b, q0 + b, seed, step,
                          op_id, threshold, keep);
}
#endif

} // namespace

bool dropoutIsaSupported(DropoutIsa isa) {
  switch (isa) {
  case DropoutIsa::kPortable:
    return true;
#if defined(__x86_64__)
  case DropoutIsa::kAvx2:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
  case DropoutIsa::kAvx512:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("bmi2");
#endif
  default:
    return false;
  }
}

void dropoutBlocksWith(DropoutIsa isa, const float *x, float *y, int64_t blocks,
                       uint64_t q0, uint64_t seed, uint64_t step,
                       uint32_t op_id, uint32_t threshold, float keep) {
  switch (isa) {
#if defined(__x86_64__)
  case DropoutIsa::kAvx512:
    return dropoutBlocksAvx512(x, y, blocks, q0, seed, step, op_id, threshold,
                               keep);
  case DropoutIsa::kAvx2:
    return dropoutBlocksAvx2(x, y, blocks, q0, seed, step, op_id, threshold,
                             keep);
#endif
  default:
    return dropoutBlocksPortable(x, y, blocks, q0, seed, step, op_id, threshold,
                                 keep);
  }
}

void dropoutBlocks(const float *x, float *y, int64_t blocks, uint64_t q0,
                   uint64_t seed, uint64_t step, uint32_t op_id,
                   uint32_t threshold, float keep) {
  static const DropoutIsa best = [] {
    for (DropoutIsa isa : {DropoutIsa::kAvx512, DropoutIsa::kAvx2})
      if (dropoutIsaSupported(isa))
        return isa;
    return DropoutIsa::kPortable;
  }();
  dropoutBlocksWith(best, x, y, blocks, q0, seed, step, op_id, threshold, keep);
}

GALAXY_CPU_MULTIVERSION
void addInto(float *out, const float *in, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    out[j] += in[j];
}

// bf16RoundedBits (bf16_bits.h), element by element; it vectorises.
GALAXY_CPU_MULTIVERSION
void roundToBf16(const float *x, float *y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    uint32_t u;
    __builtin_memcpy(&u, x + j, sizeof u);
    const uint32_t r = bf16RoundedBits(u);
    __builtin_memcpy(y + j, &r, sizeof r);
  }
}

} // namespace galaxy::rt::cpu
