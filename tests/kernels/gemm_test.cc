// The GEMM wrappers (oneDNN, OpenBLAS, naive) against a loop, and the start-up
// choice.
#include <cstdlib>

#include "runtime/cpu/gemm.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

using cpu::GemmKind;

// Row-major with padded leading dimensions, beta != 0: every argument of the
// wrapper matters.
// kPerShape twice: its first call of a shape times the libraries into
// scratch (C must keep its contents for beta), its second uses the choice;
// kOneDnnMatmul twice: the second call reuses the cached primitive.
TEST(Gemm, EveryLibraryMatchesLoops) {
  std::mt19937 rng(20);
  std::uniform_real_distribution<float> dist(-1, 1);
  const int64_t m = 5, n = 7, k = 3, pad = 2;
  for (GemmKind kind :
       {GemmKind::kOneDnn, GemmKind::kOpenBlas, GemmKind::kNaive,
        GemmKind::kOneDnnMatmul, GemmKind::kOneDnnMatmul, GemmKind::kGalaxy,
        GemmKind::kPerShape, GemmKind::kPerShape})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t arows = ta ? k : m, acols = ta ? m : k;
        const int64_t brows = tb ? n : k, bcols = tb ? k : n;
        const int64_t lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
        std::vector<float> a(arows * lda), b(brows * ldb), c(m * ldc);
        for (float &v : a)
          v = dist(rng);
        for (float &v : b)
          v = dist(rng);
        for (float &v : c)
          v = dist(rng);
        std::vector<double> want(c.begin(), c.end());
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p)
              s += double(ta ? a[p * lda + i] : a[i * lda + p]) *
                   (tb ? b[j * ldb + p] : b[p * ldb + j]);
            want[i * ldc + j] = 1.5 * s + 0.5 * c[i * ldc + j];
          }
        ASSERT_TRUE(cpu::sgemmFor(kind)(ta, tb, m, n, k, 1.5f, a.data(), lda,
                                        b.data(), ldb, 0.5f, c.data(), ldc)
                        .ok());
        expectClose(c, want, 1e-5, 1e-5,
                    std::string(cpu::gemmKindName(kind)) + (ta ? " T" : " N") +
                        (tb ? "T" : "N"));
      }
}

TEST(Gemm, EmptyInnerDimensionScalesC) {
  std::vector<float> c = {1, 2, 3, 4};
  for (GemmKind kind :
       {GemmKind::kOneDnn, GemmKind::kOpenBlas, GemmKind::kNaive,
        GemmKind::kPerShape, GemmKind::kOneDnnMatmul, GemmKind::kGalaxy}) {
    std::vector<float> cc = c;
    ASSERT_TRUE(cpu::sgemmFor(kind)(false, false, 2, 2, 0, 1.f, nullptr, 1,
                                    nullptr, 2, 0.f, cc.data(), 2)
                    .ok());
    EXPECT_EQ(cc, std::vector<float>(4, 0.f));
  }
}

TEST(Gemm, DescriptionNamesTheChoiceAndBothLibraries) {
  const std::string d = cpuBackend().gemmDescription();
  EXPECT_NE(d.find("GEMM: "), std::string::npos) << d;
  EXPECT_NE(d.find("oneDNN"), std::string::npos) << d;
  EXPECT_NE(d.find("OpenBLAS"), std::string::npos) << d;
  EXPECT_NE(d.find("per shape"), std::string::npos) << d;
  std::cout << d << "\n";
}

TEST(Gemm, EnvironmentForcesALibrary) {
  ASSERT_EQ(setenv("GALAXY_GEMM", "openblas", 1), 0);
  ASSERT_EQ(setenv("GALAXY_THREADS", "1", 1), 0);
  std::unique_ptr<Backend> forced = makeCpuBackend();
  EXPECT_NE(forced->gemmDescription().find("OpenBLAS"), std::string::npos);
  EXPECT_NE(forced->gemmDescription().find("forced by GALAXY_GEMM=openblas"),
            std::string::npos);
  EXPECT_NE(forced->gemmDescription().find("1 threads"), std::string::npos)
      << forced->gemmDescription();
  ASSERT_EQ(setenv("GALAXY_GEMM", "mkl", 1), 0);
  std::unique_ptr<Backend> measured = makeCpuBackend();
  EXPECT_NE(measured->gemmDescription().find("GALAXY_GEMM='mkl'"),
            std::string::npos)
      << measured->gemmDescription();
  unsetenv("GALAXY_GEMM");
  unsetenv("GALAXY_THREADS");
  EXPECT_FALSE(cpu::parseGemmKind("mkl").ok());
  EXPECT_EQ(*cpu::parseGemmKind("onednn"), GemmKind::kOneDnn);
  EXPECT_EQ(*cpu::parseGemmKind("onednn-matmul"), GemmKind::kOneDnnMatmul);
  EXPECT_EQ(*cpu::parseGemmKind("galaxy"), GemmKind::kGalaxy);
}

// A matmul primitive is built per (shape, alpha, beta): the same shape with
// another alpha and beta must not reuse the first one's scales.
TEST(Gemm, OneDnnMatmulKeysPrimitivesOnAlphaAndBeta) {
  const int64_t m = 3, n = 4, k = 2;
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {1, 0, 2, 1, 0, 1, 1, 3};
  for (auto [alpha, beta] : {std::pair{1.f, 0.f}, {-0.5f, 1.f}, {2.f, 0.25f}}) {
    std::vector<float> c(m * n, 2.f);
    std::vector<double> want(m * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += a[i * k + p] * b[p * n + j];
        want[i * n + j] = alpha * s + beta * 2.0;
      }
    ASSERT_TRUE(cpu::onednnMatmulSgemm(false, false, m, n, k, alpha, a.data(),
                                       k, b.data(), n, beta, c.data(), n)
                    .ok());
    expectClose(c, want, 1e-6, 1e-6,
                "alpha " + std::to_string(alpha) + " beta " +
                    std::to_string(beta));
  }
}

// Denormals are flushed to zero by default (FTZ/DAZ: they cost 50-100x per
// operation) and kept with GALAXY_DENORMALS=keep.
TEST(Denormals, FlushedByDefaultKeptOnRequest) {
  const float tiny = 1e-39f; // below FLT_MIN: a denormal
  ASSERT_LT(tiny, 1.17549435e-38f);
  auto scaled = [&](Backend &be) {
    Buf x = Buf::values({2}, {tiny, 1.f}), y = Buf::zeros({2});
    runOk(Op("scale").f("alpha", 1.0), {&x}, {&y}, {}, &be);
    return y.f;
  };
  std::unique_ptr<Backend> flush = cpu::makeCpuBackend({.threads = 1});
  EXPECT_NE(flush->gemmDescription().find("denormals flushed"),
            std::string::npos);
  EXPECT_EQ(scaled(*flush), (std::vector<float>{0.f, 1.f}));
  ASSERT_EQ(setenv("GALAXY_DENORMALS", "keep", 1), 0);
  std::unique_ptr<Backend> keep = cpu::makeCpuBackend({.threads = 1});
  unsetenv("GALAXY_DENORMALS");
  EXPECT_NE(keep->gemmDescription().find("denormals kept"), std::string::npos);
  EXPECT_EQ(scaled(*keep), (std::vector<float>{tiny, 1.f}));
  EXPECT_EQ(scaled(*flush), (std::vector<float>{0.f, 1.f})); // set back
}

} // namespace
} // namespace galaxy::rt::testing
