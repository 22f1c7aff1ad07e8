#include "runtime/cpu/bf16_copies.h"

#include <immintrin.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "runtime/cpu/bf16_bits.h"
#include "runtime/cpu/parallel.h"

namespace galaxy::rt::cpu {
namespace {

void toBf16Scalar(const float *x, uint16_t *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    __builtin_memcpy(&u, x + i, sizeof u);
    y[i] = uint16_t(bf16RoundedBits(u) >> 16);
  }
}

// bf16RoundedBits on 16 lanes, the result in each lane's low half. Not
// vcvtneps2bf16: it reads subnormal inputs as zero, and these bits must equal
// the emulation's copies (roundToBf16).
__attribute__((target("avx512f"))) inline __m512i roundedHalves(__m512 v) {
  const __m512i abs = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000),
                quiet = _mm512_set1_epi32(0x00400000),
                half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i u = _mm512_castps_si512(v);
  // NaN: |u| above inf's bits (both below 2^31, so a signed compare).
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs), inf);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, half), lsb);
  r = _mm512_mask_or_epi32(r, nan, u, quiet);
  return _mm512_srli_epi32(r, 16);
}

// (the baseline build vectorises the scalar loop for SSE2 only)
__attribute__((target("avx512f"))) void toBf16Avx512(const float *x,
                                                     uint16_t *y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(
        reinterpret_cast<__m256i *>(y + i),
        _mm512_cvtepi32_epi16(roundedHalves(_mm512_loadu_ps(x + i))));
  toBf16Scalar(x + i, y + i, n - i);
}

// w = beta·w + alpha·g, then y = w's bfloat16 bits (y may be null: the update
// alone). One pass: w is read and written once and rounded while in a
// register, where an update then toBf16 would read w from memory twice.
void updateScalar(float *w, const float *g, uint16_t *y, int64_t n, float alpha,
                  float beta) {
  for (int64_t i = 0; i < n; ++i) {
    w[i] = std::fma(beta, w[i], alpha * g[i]);
    if (y)
      toBf16Scalar(w + i, y + i, 1);
  }
}

__attribute__((target("avx512f"))) void updateAvx512(float *w, const float *g,
                                                     uint16_t *y, int64_t n,
                                                     float alpha, float beta) {
  const __m512 a = _mm512_set1_ps(alpha), b = _mm512_set1_ps(beta);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_fmadd_ps(b, _mm512_loadu_ps(w + i),
                                     _mm512_mul_ps(a, _mm512_loadu_ps(g + i)));
    _mm512_storeu_ps(w + i, v);
    if (y)
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i),
                          _mm512_cvtepi32_epi16(roundedHalves(v)));
  }
  updateScalar(w + i, g + i, y ? y + i : nullptr, n - i, alpha, beta);
}

struct Copy {
  uint64_t version = 0; // 0: stale
  int64_t n = 0;
  uint64_t lastUse = 0;
  std::shared_ptr<uint16_t[]> bits;
  int64_t bytes() const { return bits ? 2 * n : 0; }
};

// Keyed by the parameter's address.
struct Cache {
  std::mutex mu;
  std::map<const float *, Copy> copies;
  uint64_t clock = 0;
  int64_t bytes = 0;

  // Room for `need` more bytes beside `keep`: least recently used entries out.
  void makeRoom(int64_t need, const Copy *keep) {
    const int64_t limit = bf16CacheLimitBytes();
    while (bytes + need > limit) {
      auto victim = copies.end();
      for (auto it = copies.begin(); it != copies.end(); ++it)
        if (&it->second != keep && it->second.bits &&
            (victim == copies.end() ||
             it->second.lastUse < victim->second.lastUse))
          victim = it;
      if (victim == copies.end())
        return; // `keep` alone is over the limit: it stays (its users need it)
      bytes -= victim->second.bytes();
      copies.erase(victim);
    }
  }

  // A kernel is about to write parameter w (n values): its copy, if it has
  // one of that size, is the storage to round the new values into (marked
  // current under `version` now; the caller writes it under the lock), else
  // null and any copy is marked stale (also when `version` is 0).
  uint16_t *toRewrite(const float *w, int64_t n, uint64_t version) {
    auto it = copies.find(w);
    if (it == copies.end())
      return nullptr;
    Copy &p = it->second;
    p.version = 0;
    if (version == 0 || p.n != n || !p.bits)
      return nullptr;
    p.version = version;
    return p.bits.get();
  }

  // The entry for w with storage for n values.
  Copy &entry(const float *w, int64_t n) {
    Copy &p = copies[w];
    p.lastUse = ++clock;
    if (p.n != n || !p.bits) {
      bytes -= p.bytes();
      p.bits.reset();
      p.version = 0;
      p.n = n;
      makeRoom(2 * n, &p);
      p.bits.reset(new uint16_t[n]);
      bytes += p.bytes();
    }
    return p;
  }
};

Cache &cache() {
  static Cache *c = new Cache;
  return *c;
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

void updateWithBf16Copy(float *w, const float *g, int64_t n, float alpha,
                        float beta, uint64_t version, int threads) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  uint16_t *y = c.toRewrite(w, n, version);
  parallelChunks(n, 1, threads, [&](int64_t i0, int64_t i1) {
    uint16_t *yc = y ? y + i0 : nullptr;
    if (avx512)
      updateAvx512(w + i0, g + i0, yc, i1 - i0, alpha, beta);
    else
      updateScalar(w + i0, g + i0, yc, i1 - i0, alpha, beta);
  });
}

Bf16Bits bf16Weights(const float *w, int64_t n, uint64_t version, int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  Copy &p = c.entry(w, n);
  if (p.version != version) {
    toBf16(w, p.bits.get(), n, threads);
    p.version = version;
  }
  return p.bits;
}

void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (uint16_t *y = c.toRewrite(w, n, version))
    toBf16(w, y, n, threads);
}

namespace {
std::atomic<int64_t> &cacheLimit() {
  static std::atomic<int64_t> limit = []() -> int64_t {
    const char *env = std::getenv("GALAXY_BF16_CACHE_MB");
    char *end = nullptr;
    const long long mb = env && *env ? std::strtoll(env, &end, 10) : 0;
    if (end && *end == '\0' && mb > 0)
      return mb * (int64_t{1} << 20);
    // Half the machine's memory: a model whose fp32 weights fit in memory
    // keeps all its copies (half their size).
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? int64_t{pages} * page / 2
                                 : int64_t{4096} << 20;
  }();
  return limit;
}
} // namespace

int64_t bf16CacheLimitBytes() { return cacheLimit().load(); }

void setBf16CacheLimitBytes(int64_t bytes) { cacheLimit().store(bytes); }

int64_t bf16CacheBytes() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

} // namespace galaxy::rt::cpu
