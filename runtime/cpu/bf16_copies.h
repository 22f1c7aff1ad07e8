// bfloat16 copies of fp32 operands for bf16 plans (docs/kernels.md "Matmul
// precision"): the rounding into 16-bit storage, and the process-wide cache of
// parameters' copies that the GEMMs and the decode GEMV both read.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"

namespace galaxy::rt::cpu {

// y[i] = the bfloat16 bits of x[i] rounded to nearest, ties to even
// (bf16RoundedBits, the same rounding as roundToBf16), over `threads` threads.
void toBf16(const float *x, uint16_t *y, int64_t n, int threads);

// A cached copy's bits, alive while held (the cache may drop its entry).
using Bf16Bits = std::shared_ptr<const uint16_t[]>;

// The bfloat16 bits of parameter `w` (n values), rounded once and kept while
// `version` stays the same (KernelContext::weightsVersion / paramsVersion)
// and the cache keeps the entry. Keyed by the parameter's address; the
// storage is kept for the next version, so refreshing a copy allocates
// nothing.
Bf16Bits bf16Weights(const float *w, int64_t n, uint64_t version, int threads);

// A kernel wrote the parameter at `w` (an optimizer update, fused SGD): its
// copy, if it has one, is rounded again now under `version` (the parameter is
// likely still in cache, and the next step's GEMMs find it ready), or marked
// stale when `version` is 0.
void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads);

// A kernel is about to rewrite parameter w (n values) and rounds the new
// values into its copy as it writes them: f(y) runs with y the copy's
// storage, or null when w has no copy of that size or `version` is 0 (any
// copy is marked stale). The copy is stale while f runs and current under
// `version` after it. f runs outside the cache's lock: nothing else may use
// w meanwhile (it is being written).
void rewriteWithBf16Copy(const float *w, int64_t n, uint64_t version,
                         absl::FunctionRef<void(uint16_t *)> f);

// The cache holds at most this many bytes of copies (GALAXY_BF16_CACHE_MB,
// default half the machine's memory): past it, the least recently used
// entries are dropped (and rounded again at their next use). Entries of
// parameters that are gone (an executor destroyed) are never used again, so
// they are the first to go.
int64_t bf16CacheLimitBytes();
// Another limit from now on (tests).
void setBf16CacheLimitBytes(int64_t bytes);
// Bytes the cache holds now (tests).
int64_t bf16CacheBytes();

} // namespace galaxy::rt::cpu
