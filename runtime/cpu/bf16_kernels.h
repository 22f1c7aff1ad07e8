// Galaxy's own AVX512-BF16 kernels for a bf16 plan's linear (vdpbf16ps, fp32
// sums): the forward x·wᵀ + bias over the parameter's bfloat16 copy as it is
// kept (bf16_linear.cc), the input gradient dy·w over the same copy
// (bf16_input_grad.cc), and the weight gradient with fused SGD, which
// updates each tile of the parameter and rounds its copy before the tile
// leaves the registers (bf16_weight_grad.cc). Operands that are fp32 are
// rounded as toBf16 rounds them while they are packed.
#pragma once

#include <cstdint>

namespace galaxy::rt::cpu {

// Whether this CPU runs these kernels (AVX512-BF16, with BW, VL and DQ).
bool bf16KernelsAvailable();

// y[m,n] = x[m,k]·wᵀ (+ bias[n] when not null): x fp32, w the bfloat16 bits
// of [n,k] row-major (a parameter's cached copy: read as it is, never
// repacked), k even. Built for training's row counts (m of 64 and more: the
// tile is 6 rows of w by 64 rows of x).
void bf16Linear(const float *x, const uint16_t *w, const float *bias, float *y,
                int64_t m, int64_t n, int64_t k, int threads);
// Its range: every row tile of w sweeps all of x packed, kept to what a
// core's L2 holds (BERT-base's 128 rows x 3072: 768 KiB). A conservative
// bound: measured past it the kernel still kept ahead of oneDNN (512 x 768 x
// 3072: 425 vs 419 GFLOP/s, 1024 x 4096 x 4096: 434 vs 396; session 10);
// larger x is untested.
inline constexpr int64_t kBf16LinearMaxPackedBytes = int64_t{1} << 20;

// dx[m,k] = dy[m,n]·w[n,k] with dy and w the bfloat16 bits, row-major (w a
// parameter's cached copy as kept, never repacked across calls), n even; the
// products summed in fp32. The input gradient of x·wᵀ: its pairs lie a row of
// w apart, so each panel of w is interleaved into pairs as it is used (in L2)
// and swept by every row tile of dx.
void bf16InputGrad(const uint16_t *dy, const uint16_t *w, float *dx, int64_t m,
                   int64_t n, int64_t k, int threads);
// Its range: measured against oneDNN's bf16 matmul on 2 Zen 5 cores
// (session 11, hot operands): level at 128 rows (BERT-base's 768 x 3072 and
// 3072 x 768: 894-930 vs 897-925 GFLOP/s), ahead at 512-2048 rows of
// 768 x 3072 (936-950 vs 898-920) and 1024 rows of 4096 x 4096 (899 vs 770);
// in the step's sequence, where w comes cold, 3-8% faster per call
// (`cpu_kernels_bench --gemm-step 3 --bf16`). More rows are untested.
inline constexpr int64_t kBf16InputGradMaxRows = 2048;

// dw[n,k] = beta·dw + alpha·dyᵀ·x summed over `rows` (dy is [rows,n], x
// [rows,k], both fp32, rounded to bfloat16 as toBf16 rounds them; the
// products summed in fp32), and the new dw's bfloat16 bits (as toBf16 rounds)
// written to `copy` when it is not null. beta = 0 leaves dw unread. Built for
// a training step's short sums (rows = batch x sequence): a 8x48 tile of dw
// is summed over all rows in registers, so the parameter is read and written
// once and the product never goes through memory, where a GEMM into scratch
// then an update pass moves it twice more.
void bf16WeightGrad(const float *dy, const float *x, int64_t rows, int64_t n,
                    int64_t k, float alpha, float beta, float *dw,
                    uint16_t *copy, int threads);
// Its range: every sweep over dw's columns re-reads dy packed (rows x n
// halves), and x's packed panel per column block grows with the rows.
// Measured against oneDNN's GEMM + a refresh of the copy (session 10): ahead
// at 1024 rows (4096 x 4096: 387 vs 352 GFLOP/s) and for 768 x 3072 up to
// 4096 rows (383 vs 358), behind at 4096 rows of 4096 x 4096 (374 vs 388).
inline constexpr int64_t kBf16WeightGradMaxRows = 1024;

} // namespace galaxy::rt::cpu
