#include "runtime/cpu/bf16_copies.h"

#include <immintrin.h>

#include <map>
#include <memory>
#include <mutex>

#include "runtime/cpu/bf16_bits.h"
#include "runtime/cpu/parallel.h"

namespace galaxy::rt::cpu {
namespace {

struct Copy {
  uint64_t version = 0; // 0: stale
  int64_t n = 0;
  std::unique_ptr<uint16_t[]> bits;
};

struct Cache {
  std::mutex mu;
  std::map<const float *, Copy> copies;
};

Cache &cache() {
  static Cache *c = new Cache;
  return *c;
}

void toBf16Scalar(const float *x, uint16_t *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    __builtin_memcpy(&u, x + i, sizeof u);
    y[i] = uint16_t(bf16RoundedBits(u) >> 16);
  }
}

// bf16RoundedBits on 16 lanes (the baseline build vectorises the scalar loop
// for SSE2 only). Not vcvtneps2bf16: it reads subnormal inputs as zero, and
// these bits must equal the emulation's copies (roundToBf16).
__attribute__((target("avx512f"))) void toBf16Avx512(const float *x,
                                                     uint16_t *y, int64_t n) {
  const __m512i abs = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000),
                quiet = _mm512_set1_epi32(0x00400000),
                half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(x + i);
    // NaN: |u| above inf's bits (both below 2^31, so a signed compare).
    const __mmask16 nan =
        _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, half), lsb);
    r = _mm512_mask_or_epi32(r, nan, u, quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
  toBf16Scalar(x + i, y + i, n - i);
}

} // namespace

void toBf16(const float *x, uint16_t *y, int64_t n, int threads) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  parallelChunks(n, 1, threads, [&](int64_t i0, int64_t i1) {
    if (avx512)
      toBf16Avx512(x + i0, y + i0, i1 - i0);
    else
      toBf16Scalar(x + i0, y + i0, i1 - i0);
  });
}

const uint16_t *bf16Weights(const float *w, int64_t n, uint64_t version,
                            int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  Copy &p = c.copies[w];
  if (p.version == version && p.n == n && p.bits)
    return p.bits.get();
  if (p.n != n || !p.bits)
    p.bits.reset(new uint16_t[n]);
  p.n = n;
  p.version = version;
  toBf16(w, p.bits.get(), n, threads);
  return p.bits.get();
}

void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.copies.find(w);
  if (it == c.copies.end())
    return;
  Copy &p = it->second;
  p.version = 0;
  if (version == 0 || p.n != n || !p.bits)
    return;
  toBf16(w, p.bits.get(), n, threads);
  p.version = version;
}

} // namespace galaxy::rt::cpu
