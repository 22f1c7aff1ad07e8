// bfloat16 copies of fp32 operands for bf16 plans (docs/kernels.md "Matmul
// precision"): the rounding into 16-bit storage, the packing of a parameter's
// copies into the blocked layout of oneDNN's bf16 matmul, and the process-wide
// cache of parameters' copies that the GEMMs and the decode GEMV read.
#pragma once

#include <cstdint>
#include <memory>

namespace galaxy::rt::cpu {

// y[i] = the bfloat16 bits of x[i] rounded to nearest, ties to even
// (bf16RoundedBits, the same rounding as roundToBf16), over `threads` threads.
void toBf16(const float *x, uint16_t *y, int64_t n, int threads);

// The packed layout: B{k, n} in oneDNN's BA16a64b2a (blocks of 64 columns
// outermost, then blocks of 32 rows; inside a block, pairs of rows
// interleaved), the weights layout its brgemm bf16 matmul asks for
// (onednnBf16PackedFits). Only whole blocks: both dimensions of the parameter
// multiples of kBf16PackBlock, so there is no padding.
inline constexpr int64_t kBf16PackBlock = 64;

// w[rows, cols] rounded (toBf16's bits) into two packed copies, each rows·cols
// halves: `wt` holds B = wᵀ ({cols, rows}: the forward x·wᵀ), `wn` holds
// B = w ({rows, cols}: the input gradient dy·w). rows and cols multiples of
// kBf16PackBlock.
void packBf16(const float *w, int64_t rows, int64_t cols, uint16_t *wt,
              uint16_t *wn, int threads);

// A cached copy's bits, alive while held (the cache may drop its entry).
using Bf16Bits = std::shared_ptr<const uint16_t[]>;

// The bfloat16 bits of parameter `w` (n values, plain layout), rounded once
// and kept while `version` stays the same (KernelContext::weightsVersion /
// paramsVersion) and the cache keeps the entry. Keyed by the parameter's
// address; the storage is kept for the next version, so refreshing a copy
// allocates nothing.
Bf16Bits bf16Weights(const float *w, int64_t n, uint64_t version, int threads);

// Parameter w[rows, cols]'s packed copies (packBf16), cached like
// bf16Weights'; rows and cols multiples of kBf16PackBlock.
struct PackedBf16Weights {
  Bf16Bits hold;
  const uint16_t *wt = nullptr; // B = wᵀ
  const uint16_t *wn = nullptr; // B = w
};
PackedBf16Weights bf16PackedWeights(const float *w, int64_t rows, int64_t cols,
                                    uint64_t version, int threads);

// A kernel wrote the parameter at `w` (an optimizer update, fused SGD): its
// copies, if it has any, are rounded again now under `version` (the parameter
// is likely still in cache, and the next step's GEMMs find them ready), or
// marked stale when `version` is 0.
void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads);

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
