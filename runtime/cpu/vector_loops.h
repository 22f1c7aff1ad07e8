// The element loops that dominate the non-GEMM time of a training step, each
// compiled for AVX-512, AVX2+FMA and baseline x86-64 and picked at load time
// (function multiversioning), so one binary runs on any x86-64 and uses the
// widest vectors the CPU has. Kernels call them on their thread's chunk.
#pragma once

#include <cstdint>

namespace galaxy::rt::cpu {

// y = gelu(x); tanh_approx picks the tanh form over the erf form.
void geluSpan(const float *x, float *y, int64_t n, bool tanh_approx);
// dx = dy · gelu'(x).
void geluGradSpan(const float *x, const float *dy, float *dx, int64_t n,
                  bool tanh_approx);

// y = x·σ(x) (SiLU / swish); dx = dy · σ(x)·(1 + x·(1 − σ(x))).
void siluSpan(const float *x, float *y, int64_t n);
void siluGradSpan(const float *x, const float *dy, float *dx, int64_t n);

// One layer_norm row: y = (x − mean)·rstd·gamma + beta; returns mean, rstd.
void layerNormRow(const float *x, const float *gamma, const float *beta,
                  float *y, int64_t h, float eps, float *mean, float *rstd);
// One layer_norm_grad row: dx from x, gamma, dy; returns mean, rstd.
void layerNormGradRow(const float *x, const float *gamma, const float *dy,
                      float *dx, int64_t h, float eps, float *mean,
                      float *rstd);
// dgamma[j] += Σ_r dy[r,j]·(x[r,j] − mean[r])·rstd[r]; dbeta[j] += Σ_r dy[r,j]
// over rows [0, rows) and columns [j0, j1), rows added in order.
void layerNormParamGradCols(const float *x, const float *dy, const float *mean,
                            const float *rstd, int64_t rows, int64_t h,
                            int64_t j0, int64_t j1, float *dgamma,
                            float *dbeta);

// In place on out[0, n): out = softmax(out) (exp, sum, scale).
void softmaxInPlace(float *out, int64_t n);

// param −= lr·(grad + wd·param).
void sgdSpan(float *p, const float *g, int64_t n, float lr, float wd);
// torch.optim.AdamW's element update with precomputed step scalars.
void adamwSpan(float *p, const float *g, float *m, float *v, int64_t n,
               float decay, float b1, float one_b1, float b2, float one_b2,
               float step_size, float bc2_sqrt, float eps);

// Dropout of `blocks` whole Philox blocks (4 elements each) starting at global
// block q0: y[i] = x[i] / keep when (word >> 8) >= threshold, else 0.
// Philox runs lane-parallel over several blocks at once, with the widest
// intrinsics copy this CPU has (the loop GCC vectorises for AVX-512 was 4x
// slower than intrinsics).
void dropoutBlocks(const float *x, float *y, int64_t blocks, uint64_t q0,
                   uint64_t seed, uint64_t step, uint32_t op_id,
                   uint32_t threshold, float keep);
// One copy by name (tests run each the CPU supports).
enum class DropoutIsa { kAvx512, kAvx2, kPortable };
bool dropoutIsaSupported(DropoutIsa isa);
void dropoutBlocksWith(DropoutIsa isa, const float *x, float *y, int64_t blocks,
                       uint64_t q0, uint64_t seed, uint64_t step,
                       uint32_t op_id, uint32_t threshold, float keep);

// out[j] += in[j] for j in [0, n).
void addInto(float *out, const float *in, int64_t n);

// y[j] = x[j] rounded to bfloat16 (round to nearest, ties to even) and kept in
// an fp32 container (low 16 bits zero); NaN stays NaN (quietened), ±inf stays
// ±inf, values beyond bf16's range round to ±inf. y may equal x.
void roundToBf16(const float *x, float *y, int64_t n);

} // namespace galaxy::rt::cpu
