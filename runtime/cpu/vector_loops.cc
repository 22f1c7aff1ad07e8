#include "runtime/cpu/vector_loops.h"

#include <cmath>

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

GALAXY_CPU_MULTIVERSION
void dropoutBlocks(const float *x, float *y, int64_t blocks, uint64_t q0,
                   uint64_t seed, uint64_t step, uint32_t op_id,
                   uint32_t threshold, float keep) {
  // Philox4x32-10 as in philox.h, on kGroup counters side by side.
  constexpr int kGroup = 16;
  const uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  const uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
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
        k0 += kWeyl0;
        k1 += kWeyl1;
      }
      // Kept as a loop (not unrolled into scalars) so it becomes vpmuludq.
#pragma GCC unroll 1
      for (int l = 0; l < kGroup; ++l) {
        const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0[l];
        const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2[l];
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

GALAXY_CPU_MULTIVERSION
void addInto(float *out, const float *in, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    out[j] += in[j];
}

} // namespace galaxy::rt::cpu
