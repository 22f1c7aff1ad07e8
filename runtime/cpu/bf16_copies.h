// bfloat16 copies of fp32 operands for bf16 plans (docs/kernels.md "Matmul
// precision"): the rounding into 16-bit storage, and the process-wide cache of
// parameters' copies that the GEMMs and the decode GEMV both read.
#pragma once

#include <cstdint>

namespace galaxy::rt::cpu {

// y[i] = the bfloat16 bits of x[i] rounded to nearest, ties to even
// (bf16RoundedBits, the same rounding as roundToBf16), over `threads` threads.
void toBf16(const float *x, uint16_t *y, int64_t n, int threads);

// The bfloat16 bits of parameter `w` (n values), rounded once and kept while
// `version` stays the same (KernelContext::weightsVersion / paramsVersion)
// and nothing drops it. Keyed by the parameter's address; the storage is kept
// for the next version, so refreshing a copy allocates nothing.
const uint16_t *bf16Weights(const float *w, int64_t n, uint64_t version,
                            int threads);

// A kernel wrote the parameter at `w` (an optimizer update, fused SGD): its
// copy, if it has one, is rounded again now under `version` (the parameter is
// likely still in cache, and the next step's GEMMs find it ready), or marked
// stale when `version` is 0.
void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads);

} // namespace galaxy::rt::cpu
