// Galaxy's own single-precision GEMM for AVX-512 (GemmKind::kGalaxy, gemm.h),
// built for a training step's shapes: one operand small (the batch x sequence
// rows of activations), the other a weight that comes cold from memory once
// per use:
// - op(B) = B (dy·w, dyᵀ·x): a tile of C broadcasts op(A)'s elements
//   against a panel of B (64 or 48 columns: four or three vectors) packed
//   contiguous, the weight panel by panel as it is used, activations whole;
// - op(B) = Bᵀ (x·wᵀ): A's rows are packed into 64 lanes, and the tile
//   broadcasts B's rows (the weight's rows, read once, in order).
// Each tile of C is summed by one thread in one order, so the bits do not
// depend on the thread count. Aᵀ·Bᵀ is not built: oneDNN takes it.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/avx512_lanes.h"
#include "runtime/cpu/gemm.h"

#define GALAXY_AVX512_TARGET __attribute__((target("avx512f")))

namespace galaxy::rt::cpu {
namespace {

// A·Bᵀ's tile (the op(B) = B tiles are chosen per shape, below): kRows
// broadcasts by kCols lanes (four 16-lane vectors): 24 accumulators + 4 + 1
// operand registers of the 32.
constexpr int kRows = 6;
constexpr int kCols = 64;

// B's packed panel (depth x 64 columns, op(B) = B) kept within a quarter of a
// Zen 4/5 core's 1 MiB L2, so it stays there while every row tile sweeps it:
// longer sums are cut into blocks of this depth.
constexpr int64_t kPanelBytes = 256 << 10;
// A's packed rows (x·wᵀ): the slice every row tile of B sweeps, within half
// of L2.
constexpr int64_t kLaneBytes = 512 << 10;
// B packed whole (dyᵀ·x): the panels one row tile of C sweeps before the
// next, within half of L2.
constexpr int64_t kSweepBytes = 512 << 10;

// Below this many multiply-adds one thread does it all: waking the second
// costs ~50-80 us (oneThreadMacs in gemm_kernels.cc, when threads sleep).
constexpr int64_t kOneThreadMacs = int64_t{1} << 22;

// C's row (`cols` valid of 16·V) = alpha·acc + beta·C; beta = 0 leaves C
// unread. Masked stores only on the last partial vector (they cost several
// plain ones on Zen 4).
template <int V>
GALAXY_AVX512_TARGET inline void storeRow(float *c, const __m512 *acc, int cols,
                                          float alpha, float beta) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 4
  for (int j = 0; j < V; ++j) {
    const int left = cols - 16 * j;
    if (left <= 0)
      break;
    const __mmask16 m = firstLanes(left);
    __m512 v = _mm512_mul_ps(va, acc[j]);
    if (beta != 0.f)
      v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c + 16 * j), v);
    if (left >= 16)
      _mm512_storeu_ps(c + 16 * j, v);
    else
      _mm512_mask_storeu_ps(c + 16 * j, m, v);
  }
}

// ---- op(B) = B: broadcast op(A) against B's panels ----------------------
// Tiles of R rows (one broadcast each) by V vectors of 16 columns, R·V = 24
// accumulators: 6 x 64 by default, 8 x 48 when C's rows are a multiple of 8
// but not of 6 (a training step's 128 rows: 6-row tiles compute 132).

// B's rows [0, depth), columns [0, cols) into a panel [depth][16·V] (columns
// past `cols` zero), so that a tile's loads run along contiguous memory: B's
// rows as stored lie a whole row apart, which the hardware prefetchers
// followed poorly (Zen 5, 2 threads, the step's GEMM sequence: dy·w at
// 330-340 GFLOP/s streaming w's rows in place, 370-395 from panels).
template <int V>
GALAXY_AVX512_TARGET void packPanel(const float *b, int64_t ldb, int64_t depth,
                                    int cols, float *out) {
  __mmask16 m[V];
  for (int j = 0; j < V; ++j)
    m[j] = firstLanes(cols - 16 * j);
  for (int64_t p = 0; p < depth; ++p, out += 16 * V) {
    const float *src = b + p * ldb;
    if (p + 8 < depth) // the weight comes cold: its rows, 8 ahead
      for (int j = 0; j < 16 * V; j += 16)
        _mm_prefetch(reinterpret_cast<const char *>(src + 8 * ldb + j),
                     _MM_HINT_T0);
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j)
      _mm512_store_ps(out + 16 * j, _mm512_maskz_loadu_ps(m[j], src + 16 * j));
  }
}

// One tile: C rows [0, rows) x columns [0, cols) = alpha·sum + beta·C, the
// sum over `depth` of op(A)(i, p)·panel[p, :]. op(A)(i, p) is a[p·lda + i]
// when ta, else a[i·lda + p]. pfC: the next tile's C, fetched during the sum
// when C is read.
template <bool TA, int R, int V>
GALAXY_AVX512_TARGET void panelTile(const float *a, int64_t lda,
                                    const float *panel, int64_t depth, int rows,
                                    int cols, float alpha, float beta, float *c,
                                    int64_t ldc, const float *pfC) {
  __m512 acc[R][V] = {}; // zeros
  // Rows past the tile's valid ones repeat its last (their sums are dropped).
  int64_t off[R];
  for (int i = 0; i < R; ++i)
    off[i] = std::min(i, rows - 1) * (TA ? 1 : lda);
  for (int64_t p = 0; p < depth; ++p, panel += 16 * V) {
    if (pfC && p < R * V)
      _mm_prefetch(
          reinterpret_cast<const char *>(pfC + (p / V) * ldc + 16 * (p % V)),
          _MM_HINT_T0);
    __m512 bv[V];
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j)
      bv[j] = _mm512_load_ps(panel + 16 * j);
    const float *ap = TA ? a + p * lda : a + p;
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(ap[off[i]]);
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j)
        acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
    if (i < rows)
      storeRow<V>(c + i * ldc, acc[i], cols, alpha, beta);
}

// 64-byte aligned scratch of this thread, at least n floats; only grows.
float *alignedScratch(std::vector<float> &v, int64_t n) {
  if (v.size() < static_cast<size_t>(n + 16))
    v.resize(n + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float *>((p + 63) & ~uintptr_t{63});
}

template <int R, int V> struct StreamProblem {
  static constexpr int kW = 16 * V; // a panel's columns
  bool ta;
  int64_t m, n, k;
  float alpha;
  const float *a;
  int64_t lda;
  const float *b;
  int64_t ldb;
  float beta;
  float *c;
  int64_t ldc;

  int64_t panels() const { return (n + kW - 1) / kW; }
  int64_t rowTiles() const { return (m + R - 1) / R; }
  const float *aAt(int64_t i0, int64_t p0) const {
    return ta ? a + p0 * lda + i0 : a + i0 * lda + p0;
  }
  void pack(const float *b0, int64_t depth, int64_t j0, float *out) const {
    packPanel<V>(b0 + j0, ldb, depth, int(std::min<int64_t>(kW, n - j0)), out);
  }
  void tile(int64_t i0, int64_t j0, int64_t p0, int64_t d, const float *panel,
            const float *pfC) const {
    const int rows = int(std::min<int64_t>(R, m - i0)),
              cols = int(std::min<int64_t>(kW, n - j0));
    // The first block of the sum scales C by beta; the later ones add to it.
    const float bt = p0 == 0 ? beta : 1.f;
    if (ta)
      panelTile<true, R, V>(aAt(i0, p0), lda, panel, d, rows, cols, alpha, bt,
                            c + i0 * ldc + j0, ldc, bt != 0.f ? pfC : nullptr);
    else
      panelTile<false, R, V>(aAt(i0, p0), lda, panel, d, rows, cols, alpha, bt,
                             c + i0 * ldc + j0, ldc, bt != 0.f ? pfC : nullptr);
  }
};

// B big (a weight, dy·w): thread `id` of `count` takes a share of the column
// panels; each panel, a block of the sum at a time, is packed into this
// thread's scratch (within L2) and swept by every row tile of C.
template <int R, int V>
void panelsOuter(const StreamProblem<R, V> &q, int id, int count) {
  constexpr int kW = StreamProblem<R, V>::kW;
  thread_local std::vector<float> buffer;
  const int64_t depth = std::max<int64_t>(16, kPanelBytes / (kW * 4));
  float *panel = alignedScratch(buffer, std::min(depth, q.k) * kW);
  const int64_t panels = q.panels(), tiles = q.rowTiles();
  for (int64_t s = panels * id / count; s < panels * (id + 1) / count; ++s)
    for (int64_t p0 = 0; p0 < std::max<int64_t>(q.k, 1); p0 += depth) {
      const int64_t d = std::min(depth, q.k - p0), j0 = s * kW;
      q.pack(q.b + p0 * q.ldb, d, j0, panel);
      for (int64_t t = 0; t < tiles; ++t)
        q.tile(t * R, j0, p0, d, panel,
               t + 1 < tiles ? q.c + (t + 1) * R * q.ldc + j0 : nullptr);
    }
}

// B small (activations, dyᵀ·x): thread `id` of `count` takes a share of C's
// column panels (or, with fewer panels than threads, a share of its row
// tiles and every panel), packs those panels of B whole into its own scratch,
// and sweeps its row tiles across them, as many panels at a time as stay in
// L2, so C (the weight, with fused SGD) is read and written once, along its
// rows. Each thread packs only the panels it uses, in its own core's cache,
// with no barrier (against splitting C's rows over panels both threads
// packed: no difference measured on the 2-core VM of session 11).
template <int R, int V>
void rowsOuter(const StreamProblem<R, V> &q, int id, int count) {
  constexpr int kW = StreamProblem<R, V>::kW;
  const int64_t panels = q.panels(), tiles = q.rowTiles();
  const int64_t kk = std::max<int64_t>(q.k, 1);
  const bool byPanels = panels >= count;
  const int64_t s0 = byPanels ? panels * id / count : 0,
                s1 = byPanels ? panels * (id + 1) / count : panels,
                t0 = byPanels ? 0 : tiles * id / count,
                t1 = byPanels ? tiles : tiles * (id + 1) / count;
  thread_local std::vector<float> buffer;
  float *packed =
      alignedScratch(buffer, std::max<int64_t>(1, s1 - s0) * kk * kW);
  for (int64_t s = s0; s < s1; ++s)
    q.pack(q.b, q.k, s * kW, packed + (s - s0) * kk * kW);
  const int64_t sweep = std::max<int64_t>(1, kSweepBytes / (kk * kW * 4));
  for (int64_t w0 = s0; w0 < s1; w0 += sweep) {
    const int64_t w1 = std::min(s1, w0 + sweep);
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t s = w0; s < w1; ++s) {
        // the next tile: along the row tile, then the next row tile
        const bool along = s + 1 < w1;
        const int64_t nt = along ? t : t + 1, ns = along ? s + 1 : w0;
        const float *pfC = nt < t1 ? q.c + nt * R * q.ldc + ns * kW : nullptr;
        q.tile(t * R, s * kW, 0, q.k, packed + (s - s0) * kk * kW, pfC);
      }
  }
}

// op(B) = B: which operand is packed whole (B when it is small, at most what
// fits a core's L2 twice over: activations; else panel by panel, a weight),
// and the threads.
template <int R, int V>
void streamGemm(const StreamProblem<R, V> &q, int threads) {
  const bool packWhole = q.k * q.n * int64_t(sizeof(float)) <= 2 * (1 << 20);
  const int64_t shares =
      packWhole ? std::max(q.panels(), q.rowTiles()) : q.panels();
  const bool parallel =
      threads > 1 && shares > 1 && q.m * q.n * q.k >= kOneThreadMacs;
  const int count = parallel ? int(std::min<int64_t>(threads, shares)) : 1;
  auto work = [&](int id, int n) {
    if (packWhole)
      rowsOuter(q, id, n);
    else
      panelsOuter(q, id, n);
  };
  if (count == 1) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(count)
  work(omp_get_thread_num(), omp_get_num_threads());
}

// ---- op(B) = Bᵀ: A's rows packed into lanes, broadcast B's rows ----------

// Rows [16g, 16g+16) of A (rows past m read as zero) into the packed A,
// [block of 64 rows][p][64 lanes], by 16 x 16 transposes.
GALAXY_AVX512_TARGET void packRows(const float *a, int64_t lda, int64_t m,
                                   int64_t k, int64_t g, float *ap) {
  const int64_t block = 16 * g / kCols, lane = 16 * g % kCols;
  float *out = ap + block * k * kCols + lane;
  for (int64_t p0 = 0; p0 < k; p0 += 16) {
    const __mmask16 mk = firstLanes(k - p0);
    __m512i v[16];
    for (int r = 0; r < 16; ++r) {
      const int64_t row = 16 * g + r;
      v[r] = row < m ? _mm512_castps_si512(
                           _mm512_maskz_loadu_ps(mk, a + row * lda + p0))
                     : _mm512_setzero_si512();
    }
    transpose16(v);
    const int64_t left = std::min<int64_t>(16, k - p0);
    for (int64_t j = 0; j < left; ++j)
      _mm512_store_si512(out + (p0 + j) * kCols, v[j]);
  }
}

// One tile of Cᵀ: B's rows [0, rows) (at b, leading dimension ldb) by the
// packed block ab (`lanes` rows of A), summed over `depth`, then C[l, i] =
// alpha·sum + bt·C[l, i] (+ bias[i] when not null) stored transposed. pfB:
// the next tile's rows of B, fetched during this sum (they come cold).
GALAXY_AVX512_TARGET void laneTile(const float *b, int64_t ldb, const float *ab,
                                   int64_t depth, const float *bias, float *c,
                                   int64_t ldc, int rows, int lanes,
                                   float alpha, float bt, const float *pfB) {
  __m512 acc[kRows][4] = {}; // zeros
  const float *br[kRows];
  for (int i = 0; i < kRows; ++i)
    br[i] = b + std::min(i, rows - 1) * ldb; // rows past the end: repeat one
  for (int64_t p = 0; p < depth; ++p, ab += kCols) {
    if (pfB && p % 16 == 0)
      for (int i = 0; i < kRows; ++i)
        _mm_prefetch(reinterpret_cast<const char *>(pfB + i * ldb + p),
                     _MM_HINT_T0);
    const __m512 x0 = _mm512_load_ps(ab), x1 = _mm512_load_ps(ab + 16),
                 x2 = _mm512_load_ps(ab + 32), x3 = _mm512_load_ps(ab + 48);
#pragma GCC unroll 6
    for (int i = 0; i < kRows; ++i) {
      const __m512 w = _mm512_set1_ps(br[i][p]);
      acc[i][0] = _mm512_fmadd_ps(w, x0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(w, x1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(w, x2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(w, x3, acc[i][3]);
    }
  }
  alignas(64) float t[kRows][kCols];
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 6
  for (int i = 0; i < kRows; ++i) {
    const __m512 bv = _mm512_set1_ps(bias && i < rows ? bias[i] : 0.f);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      _mm512_store_ps(&t[i][16 * j], _mm512_fmadd_ps(va, acc[i][j], bv));
  }
  for (int l = 0; l < lanes; ++l) {
    float *cl = c + l * ldc;
    if (bt == 0.f)
      for (int i = 0; i < rows; ++i)
        cl[i] = t[i][l];
    else
      for (int i = 0; i < rows; ++i)
        cl[i] = t[i][l] + bt * cl[i];
  }
}

// C = alpha·A·Bᵀ + beta·C (+ bias): A packed once into the calling thread's
// scratch (every thread reads it), then row tiles of B split over threads,
// each sweeping every lane block, the sum in blocks that keep the packed
// block's slice in L2. The bias joins the first block's sum, as it would from
// C = bias with beta = 1: the same bits either way.
void laneGemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, const float *bias,
              float beta, float *c, int64_t ldc, int threads) {
  const int64_t blocks = (m + kCols - 1) / kCols, groups = blocks * kCols / 16,
                rowTiles = (n + kRows - 1) / kRows;
  thread_local std::vector<float> packed; // the caller's; every thread reads it
  float *ap = alignedScratch(packed, std::max<int64_t>(1, blocks * k * kCols));
  const int64_t depth = std::max<int64_t>(
      16, kLaneBytes / (blocks * kCols * int64_t(sizeof(float))) / 16 * 16);
  auto work = [&](int id, int count) {
    for (int64_t g = groups * id / count; g < groups * (id + 1) / count; ++g)
      packRows(a, lda, m, k, g, ap);
    if (count > 1) {
#pragma omp barrier
    }
    const int64_t t0 = rowTiles * id / count, t1 = rowTiles * (id + 1) / count;
    for (int64_t p0 = 0; p0 < std::max<int64_t>(k, 1); p0 += depth) {
      const int64_t d = std::min(depth, k - p0);
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t bl = 0; bl < blocks; ++bl) {
          const bool fetch = bl == 0 && t + 1 < t1;
          const int64_t j0 = t * kRows;
          laneTile(b + j0 * ldb + p0, ldb, ap + (bl * k + p0) * kCols, d,
                   p0 == 0 && bias ? bias + j0 : nullptr,
                   c + bl * kCols * ldc + j0, ldc,
                   int(std::min<int64_t>(kRows, n - j0)),
                   int(std::min<int64_t>(kCols, m - bl * kCols)), alpha,
                   p0 == 0 ? beta : 1.f,
                   fetch ? b + (j0 + kRows) * ldb + p0 : nullptr);
        }
    }
  };
  if (threads <= 1 || rowTiles < 2 || m * n * k < kOneThreadMacs) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(std::min <int64_t>(threads, rowTiles))
  work(omp_get_thread_num(), omp_get_num_threads());
}

int gemmThreads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

} // namespace

bool galaxySgemmAvailable() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

bool galaxySgemmBuilt(bool trans_a, bool trans_b) {
  return galaxySgemmAvailable() && !(trans_a && trans_b);
}

absl::Status galaxySgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                         float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float beta, float *c,
                         int64_t ldc) {
  if (!galaxySgemmBuilt(ta, tb))
    return sgemmFor(GemmKind::kOneDnn)(ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                       beta, c, ldc);
  if (m <= 0 || n <= 0)
    return absl::OkStatus();
  const int threads = gemmThreads();
  if (tb) {
    laneGemm(m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc, threads);
    return absl::OkStatus();
  }
  if (m % 8 == 0 && m % 6 != 0)
    streamGemm(
        StreamProblem<8, 3>{ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc},
        threads);
  else
    streamGemm(
        StreamProblem<6, 4>{ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc},
        threads);
  return absl::OkStatus();
}

absl::Status galaxySgemmBias(int64_t m, int64_t n, int64_t k, const float *a,
                             int64_t lda, const float *b, int64_t ldb,
                             const float *bias, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0)
    return absl::OkStatus();
  if (!galaxySgemmAvailable()) { // the bias copied into C, then beta = 1
    for (int64_t i = 0; i < m; ++i)
      std::copy(bias, bias + n, c + i * ldc);
    return sgemmFor(GemmKind::kOneDnn)(false, true, m, n, k, 1.f, a, lda, b,
                                       ldb, 1.f, c, ldc);
  }
  laneGemm(m, n, k, 1.f, a, lda, b, ldb, bias, 0.f, c, ldc, gemmThreads());
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
