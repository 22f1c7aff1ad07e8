// Which GEMM library runs each shape: chooseGemm() and the per-shape choice
// (gemm.h). Each library is fast on some BERT shapes and slow on others (e.g.
// oneDNN's dy·W with N = 3072 runs at half OpenBLAS's speed on Zen 3 while
// oneDNN wins the weight gradients; on an AVX-512 Xeon OpenBLAS wins the weight
// gradients and oneDNN's matmul primitive x·Wᵀ with K = 3072), so the choice is
// made per shape.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/gemm.h"

namespace galaxy::rt::cpu {
namespace {

std::string cpuModel() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 1);
  return "unknown-cpu";
}

std::string cachePath() {
  const char *xdg = std::getenv("XDG_CACHE_HOME");
  const char *home = std::getenv("HOME");
  if (xdg && *xdg)
    return std::string(xdg) + "/galaxy/gemm-shapes.txt";
  if (home && *home)
    return std::string(home) + "/.cache/galaxy/gemm-shapes.txt";
  return "";
}

// Lines "cpu model|threads|candidates|ta tb m n k lda ldb ldc<TAB>library".
// `candidates` names the set of libraries a choice was made among, so a
// choice remembered before a library joined (or where it could not run: a
// VM with AVX-512 masked shares the model name) is timed again.
std::string candidates() {
  return galaxySgemmAvailable() ? "onednn,openblas,onednn-matmul,galaxy"
                                : "onednn,openblas,onednn-matmul";
}

struct ShapeTable {
  std::mutex mu;
  bool loaded = false, remeasure = false;
  // Bumped when chooseGemm resets the table, so threads drop their memo.
  std::atomic<uint64_t> generation{1};
  int threads = 1;
  std::string prefix;
  std::map<std::string, GemmKind> kinds;

  void load() {
    loaded = true;
    prefix = absl::StrFormat("%s|%d|%s|", cpuModel(), threads, candidates());
    if (remeasure)
      return;
    std::ifstream in(cachePath());
    std::string line;
    while (in && std::getline(in, line)) {
      auto tab = line.rfind('\t');
      if (tab == std::string::npos || line.rfind(prefix, 0) != 0)
        continue;
      absl::StatusOr<GemmKind> k = parseGemmKind(line.substr(tab + 1));
      if (k.ok() && *k != GemmKind::kPerShape)
        kinds[line.substr(prefix.size(), tab - prefix.size())] = *k;
    }
  }

  void remember(const std::string &shape, GemmKind kind) {
    kinds[shape] = kind;
    const std::string path = cachePath();
    if (path.empty())
      return;
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path(), ec);
    // One short line appended at once: concurrent ranks do not tear lines.
    std::ofstream out(path, std::ios::app);
    out << prefix << shape << "\t" << gemmKindName(kind) << "\n" << std::flush;
  }
};

ShapeTable &table() {
  static ShapeTable t;
  return t;
}

// First use of a shape: each library, in turn, kRounds times, into scratch (C
// keeps its contents for beta != 0); the fastest. The first round also pays
// one-time costs (JIT, building a primitive), so each library's best round
// counts. A VM's speed swings by 10-20% within seconds (a Zen 5 VM, session
// 11), and a choice is remembered for every later run: five rounds make a
// slow spell less likely to decide it than three did.
constexpr int kRounds = 5;

absl::StatusOr<GemmKind> fasterLibrary(bool ta, bool tb, int64_t m, int64_t n,
                                       int64_t k, float alpha, const float *a,
                                       int64_t lda, const float *b, int64_t ldb,
                                       float beta, const float *c,
                                       int64_t ldc) {
  std::vector<float> scratch(static_cast<size_t>(std::max<int64_t>(m, 1)) *
                             std::max<int64_t>(ldc, 1));
  std::vector<GemmKind> libs = {GemmKind::kOneDnn, GemmKind::kOpenBlas,
                                GemmKind::kOneDnnMatmul};
  if (galaxySgemmBuilt(ta, tb))
    libs.push_back(GemmKind::kGalaxy);
  std::vector<double> best(libs.size(), 1e30);
  for (int round = 0; round < kRounds; ++round)
    for (size_t l = 0; l < libs.size(); ++l) {
      if (beta != 0.f && m > 0)
        std::copy(c, c + (m - 1) * ldc + n, scratch.begin());
      auto t0 = std::chrono::steady_clock::now();
      absl::Status s = sgemmFor(libs[l])(ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                         beta, scratch.data(), ldc);
      if (!s.ok())
        return s;
      best[l] = std::min(best[l], std::chrono::duration<double>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
    }
  return libs[std::min_element(best.begin(), best.end()) - best.begin()];
}

// The table's key of a shape (the part of a line after the prefix).
std::string shapeKey(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                     int64_t lda, int64_t ldb, int64_t ldc) {
  return absl::StrFormat("%d %d %d %d %d %d %d %d", ta, tb, m, n, k, lda, ldb,
                         ldc);
}

} // namespace

absl::Status perShapeSgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                           float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c,
                           int64_t ldc) {
  // Batched matmuls call one shape many times, from several threads: each
  // thread remembers its last shape, so the table is locked only on a change.
  const std::array<int64_t, 8> key = {ta, tb, m, n, k, lda, ldb, ldc};
  thread_local std::array<int64_t, 8> lastKey{};
  thread_local SgemmFn lastFn = nullptr;
  thread_local uint64_t lastGeneration = 0;
  ShapeTable &t = table();
  if (lastFn && key == lastKey &&
      lastGeneration == t.generation.load(std::memory_order_relaxed))
    return lastFn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  const std::string shape = shapeKey(ta, tb, m, n, k, lda, ldb, ldc);
  {
    std::lock_guard<std::mutex> lock(t.mu);
    if (!t.loaded)
      t.load();
    auto it = t.kinds.find(shape);
    GemmKind kind;
    if (it != t.kinds.end()) {
      kind = it->second;
    } else {
      absl::StatusOr<GemmKind> timed =
          fasterLibrary(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      if (!timed.ok())
        return timed.status();
      kind = *timed;
      t.remember(shape, kind);
    }
    lastKey = key;
    lastFn = sgemmFor(kind);
    lastGeneration = t.generation.load(std::memory_order_relaxed);
  }
  return lastFn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

std::optional<GemmKind> perShapeKnownKind(bool ta, bool tb, int64_t m,
                                          int64_t n, int64_t k, int64_t lda,
                                          int64_t ldb, int64_t ldc) {
  const std::string shape = shapeKey(ta, tb, m, n, k, lda, ldb, ldc);
  ShapeTable &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.loaded)
    t.load();
  auto it = t.kinds.find(shape);
  if (it == t.kinds.end())
    return std::nullopt;
  return it->second;
}

GemmChoice chooseGemm(int threads, std::optional<GemmKind> forced) {
  setGemmThreads(threads);
  if (forced)
    return {*forced, absl::StrFormat("GEMM: %s (chosen by the caller)",
                                     gemmLibraryName(*forced, threads))};
  std::string note;
  const char *env = std::getenv("GALAXY_GEMM");
  const bool remeasure = env && std::string(env) == "measure";
  if (env && *env && !remeasure) {
    absl::StatusOr<GemmKind> k = parseGemmKind(env);
    if (k.ok())
      return {*k, absl::StrFormat("GEMM: %s (forced by GALAXY_GEMM=%s)",
                                  gemmLibraryName(*k, threads), env)};
    note = absl::StrFormat(" (%s; choosing per shape instead)",
                           k.status().message());
  }
  {
    ShapeTable &t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    t.threads = threads;
    t.remeasure = remeasure;
    t.loaded = false;
    t.kinds.clear();
    t.generation.fetch_add(1);
  }
  return {GemmKind::kPerShape,
          absl::StrFormat("GEMM: %s, timed at a shape's first use and "
                          "remembered in %s%s (GALAXY_GEMM=measure re-times; "
                          "=onednn|onednn-matmul|openblas|galaxy forces one)",
                          gemmLibraryName(GemmKind::kPerShape, threads),
                          cachePath(), note)};
}

} // namespace galaxy::rt::cpu
