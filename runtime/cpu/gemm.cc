#include "runtime/cpu/gemm.h"
#include "runtime/cpu/library_env.h"
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "oneapi/dnnl/dnnl.h"
#include "oneapi/dnnl/dnnl_debug.h"

extern "C" {
#include <cblas.h>
}

namespace galaxy::rt::cpu {
namespace {

// Degenerate sizes are handled here so every library sees m, n, k >= 1.
bool handleEmpty(int64_t m, int64_t n, int64_t k, float beta, float *c,
                 int64_t ldc) {
  if (m == 0 || n == 0)
    return true;
  if (k > 0)
    return false;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
  return true;
}

absl::Status onednnSgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                         float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float beta, float *c,
                         int64_t ldc) {
  if (handleEmpty(m, n, k, beta, c, ldc))
    return absl::OkStatus();
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha,
                                a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    return absl::InternalError(absl::StrFormat(
        "dnnl_sgemm(%c%c, m=%d n=%d k=%d lda=%d ldb=%d ldc=%d) failed: status "
        "%d",
        ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, lda, ldb, ldc, int(st)));
  return absl::OkStatus();
}

void cblasBlock(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

// Below this m·n·k one thread does the whole product.
constexpr int64_t kSplitGemm = int64_t{1} << 21;

// OpenBLAS runs single-threaded (setGemmThreads) on blocks of C split over
// OpenMP threads: one thread pool for GEMMs and our own loops. OpenBLAS's own
// pool busy-waits after each call and fought the OpenMP threads for the cores
// (a BERT step ran 3–10x slower on a loaded 2-core machine).
absl::Status openblasSgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                           float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c,
                           int64_t ldc) {
  if (handleEmpty(m, n, k, beta, c, ldc))
    return absl::OkStatus();
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || m * n * k < kSplitGemm) {
    cblasBlock(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return absl::OkStatus();
  }
  // Split the longer side of C in 16-aligned blocks (whole SIMD tiles).
  const bool split_n = n >= m;
  const int64_t len = split_n ? n : m;
  const int64_t tiles = (len + 15) / 16;
  const int t = static_cast<int>(std::min<int64_t>(threads, tiles));
#pragma omp parallel for num_threads(t) schedule(static, 1)
  for (int i = 0; i < t; ++i) {
    const int64_t lo = std::min(len, tiles * i / t * 16);
    const int64_t hi = std::min(len, tiles * (i + 1) / t * 16);
    if (hi <= lo)
      continue;
    if (split_n) // columns [lo,hi) of op(B) and C
      cblasBlock(ta, tb, m, hi - lo, k, alpha, a, lda,
                 tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc);
    else // rows [lo,hi) of op(A) and C
      cblasBlock(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * lda, lda,
                 b, ldb, beta, c + lo * ldc, ldc);
  }
  return absl::OkStatus();
}

// The reference path (GALAXY_GEMM=naive): plain loops, rows split over OpenMP
// threads.
absl::Status naiveSgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c,
                        int64_t ldc) {
  if (handleEmpty(m, n, k, beta, c, ldc))
    return absl::OkStatus();
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    float *crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j)
      crow[j] = beta == 0.f ? 0.f : beta * crow[j];
    if (tb) {
      for (int64_t j = 0; j < n; ++j) {
        float s = 0.f;
        for (int64_t p = 0; p < k; ++p)
          s += (ta ? a[p * lda + i] : a[i * lda + p]) * b[j * ldb + p];
        crow[j] += alpha * s;
      }
    } else {
      for (int64_t p = 0; p < k; ++p) {
        const float av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
        const float *brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j)
          crow[j] += av * brow[j];
      }
    }
  }
  return absl::OkStatus();
}

std::string onednnName(int threads) {
  const dnnl_version_t *v = dnnl_version();
  std::string isa = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
  if (absl::StartsWith(isa, "cpu_isa_"))
    isa = isa.substr(8);
  return absl::StrFormat("oneDNN %d.%d.%d dnnl_sgemm (isa %s, %d threads)",
                         v->major, v->minor, v->patch, isa, threads);
}

std::string openblasName(int threads) {
  // openblas_get_config(): "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell
  // MAX_THREADS=64".
  std::vector<std::string> words = absl::StrSplit(openblas_get_config(), ' ');
  std::string version =
      words.size() >= 2 ? words[0] + " " + words[1] : "OpenBLAS";
  std::string note = openblasCoreNote();
  if (!note.empty())
    note = "; " + note;
  return absl::StrFormat(
      "%s cblas_sgemm (core %s%s, %d threads: blocks of C on OpenMP threads)",
      version, openblas_get_corename(), note, threads);
}

std::string onednnMatmulName(int threads) {
  const dnnl_version_t *v = dnnl_version();
  return absl::StrFormat("oneDNN %d.%d.%d matmul primitive (%d threads)",
                         v->major, v->minor, v->patch, threads);
}

std::string galaxyName(int threads) {
  return galaxySgemmAvailable()
             ? absl::StrFormat("Galaxy's AVX-512 sgemm (%d threads)", threads)
             : "Galaxy's AVX-512 sgemm (no AVX-512 here: oneDNN's instead)";
}

} // namespace

std::string gemmLibraryName(GemmKind kind, int threads) {
  switch (kind) {
  case GemmKind::kOneDnn:
    return onednnName(threads);
  case GemmKind::kOpenBlas:
    return openblasName(threads);
  case GemmKind::kOneDnnMatmul:
    return onednnMatmulName(threads);
  case GemmKind::kNaive:
    return absl::StrFormat("naive loops (%d threads)", threads);
  case GemmKind::kGalaxy:
    return galaxyName(threads);
  case GemmKind::kPerShape:
    return absl::StrFormat(
        "per shape: the fastest of %s, %s, %s and %s for each GEMM shape",
        onednnName(threads), onednnMatmulName(threads), openblasName(threads),
        galaxyName(threads));
  }
  return "?";
}

std::string_view gemmKindName(GemmKind kind) {
  switch (kind) {
  case GemmKind::kOneDnn:
    return "onednn";
  case GemmKind::kOpenBlas:
    return "openblas";
  case GemmKind::kNaive:
    return "naive";
  case GemmKind::kPerShape:
    return "per-shape";
  case GemmKind::kOneDnnMatmul:
    return "onednn-matmul";
  case GemmKind::kGalaxy:
    return "galaxy";
  }
  return "?";
}

absl::StatusOr<GemmKind> parseGemmKind(std::string_view name) {
  for (GemmKind k :
       {GemmKind::kOneDnn, GemmKind::kOpenBlas, GemmKind::kNaive,
        GemmKind::kPerShape, GemmKind::kOneDnnMatmul, GemmKind::kGalaxy})
    if (name == gemmKindName(k))
      return k;
  return absl::InvalidArgumentError(absl::StrFormat(
      "GALAXY_GEMM='%s' is not a GEMM: use onednn, onednn-matmul, openblas, "
      "galaxy, naive or per-shape (or measure)",
      name));
}

SgemmFn sgemmFor(GemmKind kind) {
  switch (kind) {
  case GemmKind::kOneDnn:
    return onednnSgemm;
  case GemmKind::kOpenBlas:
    return openblasSgemm;
  case GemmKind::kNaive:
    return naiveSgemm;
  case GemmKind::kPerShape:
    return perShapeSgemm;
  case GemmKind::kOneDnnMatmul:
    return onednnMatmulSgemm;
  case GemmKind::kGalaxy:
    return galaxySgemm;
  }
  return naiveSgemm;
}

void setGemmThreads(int threads) {
  // OpenMP's count is per calling thread. OpenBLAS always runs on one thread:
  // openblasSgemm spreads its blocks over the OpenMP threads.
  thread_local int omp_threads = 0;
  static std::once_flag blas_once;
  if (omp_threads != threads) {
    omp_set_num_threads(threads);
    omp_threads = threads;
  }
  std::call_once(blas_once, [] { openblas_set_num_threads(1); });
}

ThreadChoice threadsFromEnv() {
  ThreadChoice choice;
  choice.threads = std::max(1, omp_get_num_procs());
  if (const char *env = std::getenv("GALAXY_THREADS"); env && *env) {
    int n = 0;
    if (absl::SimpleAtoi(env, &n) && n > 0)
      choice.threads = n;
    else
      choice.note = absl::StrFormat(
          "GALAXY_THREADS='%s' ignored (want a positive integer), "
          "using %d cores",
          env, choice.threads);
  }
  return choice;
}

double measureGemmGflops(GemmKind kind, int reps) {
  constexpr int64_t kM = 128, kK = 768, kN1 = 768, kN2 = 3072;
  std::vector<float> a(kM * kK), b(kN2 * kK), c(kM * kN2);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = float(i % 7) * 0.01f;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(i % 5) * 0.01f;
  SgemmFn fn = sgemmFor(kind);
  auto once = [&] { // like linear: y = x·wᵀ
    (void)fn(false, true, kM, kN1, kK, 1.f, a.data(), kK, b.data(), kK, 0.f,
             c.data(), kN1);
    (void)fn(false, true, kM, kN2, kK, 1.f, a.data(), kK, b.data(), kK, 0.f,
             c.data(), kN2);
  };
  once(); // warm-up: JIT, thread pools, page faults
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    once();
    best = std::min(best, std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
  }
  const double flops = 2.0 * kM * kK * (kN1 + kN2);
  return flops / best * 1e-9;
}

} // namespace galaxy::rt::cpu
