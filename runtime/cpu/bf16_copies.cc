#include "runtime/cpu/bf16_copies.h"

#include <immintrin.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

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
__attribute__((target("avx512f"))) inline __m512i
roundedHalves(const float *x) {
  const __m512i abs = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000),
                quiet = _mm512_set1_epi32(0x00400000),
                half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i u = _mm512_loadu_si512(x);
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
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i),
                        _mm512_cvtepi32_epi16(roundedHalves(x + i)));
  toBf16Scalar(x + i, y + i, n - i);
}

constexpr int64_t B = kBf16PackBlock;

// Offsets in the packed layout (bf16_copies.h) of B{k, n} with K rows: blocks
// of 64 columns, each K·64 halves; in one, blocks of 32 rows, 2048 halves; in
// one, row pairs of 128 halves with the pair's two values side by side.
inline int64_t packedOffset(int64_t kk, int64_t nn, int64_t K) {
  return (nn / 64) * (K * 64) + (kk / 32) * 2048 + ((kk % 32) / 2) * 128 +
         (nn % 64) * 2 + kk % 2;
}

// The tile at column c0 of a band of 64 rounded rows `h` (row stride cols),
// the band starting at row r0: its 4096 halves of each copy, the portable
// way.
void packTileScalar(const uint16_t *h, int64_t rows, int64_t cols, int64_t r0,
                    int64_t c0, uint16_t *wt, uint16_t *wn) {
  for (int64_t r = 0; r < B; ++r)
    for (int64_t c = c0; c < c0 + B; ++c) {
      const uint16_t v = h[r * cols + c];
      wt[packedOffset(c, r0 + r, cols)] = v; // B = wᵀ: k = c, n = r
      wn[packedOffset(r0 + r, c, rows)] = v; // B = w: k = r, n = c
    }
}

// 16x16 transpose of 32-bit lanes, in place.
__attribute__((target("avx512f"))) inline void transpose16(__m512i v[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  // u[4g + j], lane L: rows 4g..4g+3 of column 4L + j.
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44),
                  x1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xee),
                  y0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44),
                  y1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xee);
    v[j] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    v[4 + j] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
    v[8 + j] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    v[12 + j] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
  }
}

// packTileScalar with 512-bit shuffles. The copies are read at the next
// step's GEMMs, long after: streaming stores spare reading each destination
// line before writing it (the stores were most of the time); they need both
// copies 64-byte aligned (the cache's storage is; every store is then a
// whole line).
template <bool kStream>
__attribute__((target("avx512f,avx512bw"))) inline void store(uint16_t *p,
                                                              __m512i v) {
  if constexpr (kStream)
    _mm512_stream_si512(reinterpret_cast<__m512i *>(p), v);
  else
    _mm512_storeu_si512(p, v);
}

template <bool kStream>
__attribute__((target("avx512f,avx512bw"))) void
packTileAvx512(const uint16_t *h, int64_t rows, int64_t cols, int64_t r0,
               int64_t c0, uint16_t *wt, uint16_t *wn) {
  const uint16_t *t = h + c0;
  // B = w: row pair p holds, for each column, rows 2p and 2p+1 side by side.
  uint16_t *n = wn + c0 * rows + r0 * 64;
  __m512i lo, hi;
  {
    alignas(64) uint16_t il[32], ih[32];
    for (int j = 0; j < 32; ++j) {
      il[j] = uint16_t((j % 2) * 32 + j / 2);
      ih[j] = uint16_t((j % 2) * 32 + 16 + j / 2);
    }
    lo = _mm512_load_si512(il);
    hi = _mm512_load_si512(ih);
  }
  for (int64_t p = 0; p < B / 2; ++p)
    for (int64_t c = 0; c < B; c += 32) {
      const __m512i a = _mm512_loadu_si512(t + 2 * p * cols + c),
                    b = _mm512_loadu_si512(t + (2 * p + 1) * cols + c);
      store<kStream>(n + p * 128 + 2 * c, _mm512_permutex2var_epi16(a, lo, b));
      store<kStream>(n + p * 128 + 2 * c + 32,
                     _mm512_permutex2var_epi16(a, hi, b));
    }
  // B = wᵀ: column pair q holds, for each row, columns 2q and 2q+1 side by
  // side: the tile's 32-bit pairs [64 rows][32 q] transposed to [32 q][64].
  uint32_t *o = reinterpret_cast<uint32_t *>(wt + r0 * cols + c0 * 64);
  const uint32_t *t32 = reinterpret_cast<const uint32_t *>(t);
  for (int64_t rb = 0; rb < B; rb += 16)
    for (int64_t qb = 0; qb < 32; qb += 16) {
      __m512i v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = _mm512_loadu_si512(t32 + (rb + i) * (cols / 2) + qb);
      transpose16(v);
      for (int j = 0; j < 16; ++j)
        store<kStream>(reinterpret_cast<uint16_t *>(o + (qb + j) * 64 + rb),
                       v[j]);
    }
}

struct Copy {
  uint64_t version = 0;              // 0: stale
  int64_t n = 0, rows = 0, cols = 0; // rows > 0: packed (2n halves)
  uint64_t lastUse = 0;
  std::shared_ptr<uint16_t[]> bits; // 64-byte aligned (packTileAvx512)
  int64_t bytes() const { return bits ? (rows > 0 ? 4 : 2) * n : 0; }
};

// Keyed by (parameter, packed).
struct Cache {
  std::mutex mu;
  std::map<std::pair<const float *, bool>, Copy> copies;
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

  // The entry for (w, packed) with storage for n values (packed: two copies).
  Copy &entry(const float *w, bool packed, int64_t n, int64_t rows,
              int64_t cols) {
    Copy &p = copies[{w, packed}];
    p.lastUse = ++clock;
    if (p.n != n || p.rows != rows || p.cols != cols || !p.bits) {
      bytes -= p.bytes();
      p.bits.reset();
      p.version = 0;
      p.n = n;
      p.rows = rows;
      p.cols = cols;
      makeRoom((packed ? 4 : 2) * n, &p);
      constexpr std::align_val_t line{64};
      p.bits.reset(
          static_cast<uint16_t *>(::operator new[]((packed ? 4 : 2) * n, line)),
          [](uint16_t *q) { ::operator delete[](q, line); });
      bytes += p.bytes();
    }
    return p;
  }
};

Cache &cache() {
  static Cache *c = new Cache;
  return *c;
}

void fill(Copy &p, const float *w, int threads) {
  if (p.rows > 0)
    packBf16(w, p.rows, p.cols, p.bits.get(), p.bits.get() + p.n, threads);
  else
    toBf16(w, p.bits.get(), p.n, threads);
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

// Band by band: 64 rows (contiguous in w) rounded in one stream into this
// thread's scratch (a few hundred KiB: L2), then shuffled tile by tile into
// both copies. Shuffling straight from w read 64 rows at once, too many
// streams for the prefetchers (4x toBf16's time on cold weights).
void packBf16(const float *w, int64_t rows, int64_t cols, uint16_t *wt,
              uint16_t *wn, int threads) {
  static const bool avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  const bool aligned =
      (reinterpret_cast<uintptr_t>(wt) | reinterpret_cast<uintptr_t>(wn)) %
          64 ==
      0;
  parallelChunks(rows / B, B * cols, threads, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<uint16_t> band;
    if (band.size() < static_cast<size_t>(B * cols))
      band.resize(B * cols);
    for (int64_t b = b0; b < b1; ++b) {
      const float *src = w + b * B * cols;
      if (avx512)
        toBf16Avx512(src, band.data(), B * cols);
      else
        toBf16Scalar(src, band.data(), B * cols);
      for (int64_t c0 = 0; c0 < cols; c0 += B)
        if (avx512 && aligned)
          packTileAvx512<true>(band.data(), rows, cols, b * B, c0, wt, wn);
        else if (avx512)
          packTileAvx512<false>(band.data(), rows, cols, b * B, c0, wt, wn);
        else
          packTileScalar(band.data(), rows, cols, b * B, c0, wt, wn);
    }
    _mm_sfence(); // the streaming stores, before other threads read them
  });
}

Bf16Bits bf16Weights(const float *w, int64_t n, uint64_t version, int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  Copy &p = c.entry(w, false, n, 0, 0);
  if (p.version != version) {
    fill(p, w, threads);
    p.version = version;
  }
  return p.bits;
}

PackedBf16Weights bf16PackedWeights(const float *w, int64_t rows, int64_t cols,
                                    uint64_t version, int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  Copy &p = c.entry(w, true, rows * cols, rows, cols);
  if (p.version != version) {
    fill(p, w, threads);
    p.version = version;
  }
  return {p.bits, p.bits.get(), p.bits.get() + p.n};
}

void refreshBf16Weights(const float *w, int64_t n, uint64_t version,
                        int threads) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (bool packed : {false, true}) {
    auto it = c.copies.find({w, packed});
    if (it == c.copies.end())
      continue;
    Copy &p = it->second;
    p.version = 0;
    if (version == 0 || p.n != n || !p.bits)
      continue;
    fill(p, w, threads);
    p.version = version;
  }
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
    // keeps all its copies (half their size plain, their size packed).
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
