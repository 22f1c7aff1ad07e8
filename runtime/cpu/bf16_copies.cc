#include "runtime/cpu/bf16_copies.h"

#include <immintrin.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "runtime/cpu/bf16_avx512.h"
#include "runtime/cpu/bf16_bits.h"
#include "runtime/cpu/bf16_kernels.h"
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

// The same bits by vcvtne2ps2bf16, 32 at a time (bf16Bits32): 26 against
// 47 us for a 128x3072 activation, the rounding a bf16 input gradient's dy
// takes before oneDNN's matmul.
GALAXY_BF16_TARGET void toBf16Avx512Bf16(const float *x, uint16_t *y,
                                         int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm512_storeu_si512(
        y + i, bf16Bits32(_mm512_loadu_ps(x + i), _mm512_loadu_ps(x + i + 16)));
  toBf16Avx512(x + i, y + i, n - i);
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
  // stale until done() marks it current), else null and any copy is marked
  // stale (also when `version` is 0).
  std::shared_ptr<uint16_t[]> toRewrite(const float *w, int64_t n,
                                        uint64_t version) {
    auto it = copies.find(w);
    if (it == copies.end())
      return nullptr;
    Copy &p = it->second;
    p.version = 0;
    if (version == 0 || p.n != n || !p.bits)
      return nullptr;
    return p.bits;
  }

  // The copy `bits` toRewrite handed out now holds w's new values: current
  // under `version`, unless the entry was dropped or replaced meanwhile.
  void rewritten(const float *w, const std::shared_ptr<uint16_t[]> &bits,
                 uint64_t version) {
    auto it = copies.find(w);
    if (it != copies.end() && it->second.bits == bits)
      it->second.version = version;
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
    if (bf16KernelsAvailable())
      toBf16Avx512Bf16(x + i0, y + i0, i1 - i0);
    else if (avx512)
      toBf16Avx512(x + i0, y + i0, i1 - i0);
    else
      toBf16Scalar(x + i0, y + i0, i1 - i0);
  });
}

void rewriteWithBf16Copy(const float *w, int64_t n, uint64_t version,
                         absl::FunctionRef<void(uint16_t *)> f) {
  Cache &c = cache();
  std::shared_ptr<uint16_t[]> bits;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    bits = c.toRewrite(w, n, version);
  }
  // Not under the lock: f may be a whole weight-gradient GEMM, and other
  // threads (pipeline stages) look up their own copies meanwhile. `bits`
  // keeps the storage alive if the cache drops the entry.
  f(bits.get());
  if (bits) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.rewritten(w, bits, version);
  }
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
  rewriteWithBf16Copy(w, n, version, [&](uint16_t *y) {
    if (y)
      toBf16(w, y, n, threads);
  });
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
