// The weight gradient of a bf16 plan's linear with fused SGD, as one kernel:
// each tile of the parameter is summed in registers (vdpbf16ps), updated and
// rounded into the parameter's bfloat16 copy before it leaves them.
#pragma once

#include <cstdint>

namespace galaxy::rt::cpu {

// Whether this CPU runs bf16WeightGrad (AVX512-BF16, with BW and VL).
bool bf16WeightGradAvailable();

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

} // namespace galaxy::rt::cpu
