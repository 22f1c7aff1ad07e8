// Few-row products against a weight matrix (decode: one row per sequence):
// y[m,n] = x[m,k]·w[n,k]ᵀ. At m of a few rows a GEMM library spends its time
// packing and in per-call overhead while the product is bound by reading w
// once; these loops read each weight once, in order, with every row of x
// reused from cache, the rows of w split over the threads.
#pragma once

#include <cstdint>

namespace galaxy::rt::cpu {

// Up to this many rows go through gemvRows.
inline constexpr int64_t kGemvMaxRows = 8;

// w in fp32. y = x·wᵀ, plus y when `accumulate` (a broadcast bias).
void gemvRows(int64_t m, int64_t n, int64_t k, const float *x, const float *w,
              float *y, bool accumulate, int threads);

// w as bfloat16 bits (bf16Weights, bf16_copies.h), x
// already rounded to bfloat16 in fp32 containers: the products are exact in
// fp32, as in the bf16 GEMM path (docs/kernels.md "Matmul precision"), and
// half the weight bytes are read.
void gemvRowsBf16(int64_t m, int64_t n, int64_t k, const float *x,
                  const uint16_t *w, float *y, bool accumulate, int threads);

} // namespace galaxy::rt::cpu
