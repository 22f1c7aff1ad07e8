#include "runtime/cpu/bf16_copies.h"

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

} // namespace

void toBf16(const float *x, uint16_t *y, int64_t n, int threads) {
  // The bit rounding vectorises; a store of 16-bit halves is one pass.
  parallelChunks(n, 1, threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      uint32_t u;
      __builtin_memcpy(&u, x + i, sizeof u);
      y[i] = uint16_t(bf16RoundedBits(u) >> 16);
    }
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

void dropBf16Weights(const float *w) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (auto it = c.copies.find(w); it != c.copies.end())
    it->second.version = 0;
}

} // namespace galaxy::rt::cpu
