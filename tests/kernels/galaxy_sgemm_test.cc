// Galaxy's own AVX-512 sgemm (runtime/cpu/galaxy_sgemm.cc) against double
// sums, on shapes around every tile tail and past the depth at which it cuts
// a sum into blocks; its bits on 1 and 2 threads; the bias epilogue against
// the bias copied into C then beta = 1.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "runtime/cpu/gemm.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

struct Shape {
  int64_t m, n, k;
};

struct Problem {
  bool ta, tb;
  Shape s;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;

  Problem(bool ta_, bool tb_, Shape s_, std::mt19937 &rng, int64_t pad = 3)
      : ta(ta_), tb(tb_), s(s_) {
    std::uniform_real_distribution<float> dist(-1, 1);
    const int64_t arows = ta ? s.k : s.m, acols = ta ? s.m : s.k;
    const int64_t brows = tb ? s.n : s.k, bcols = tb ? s.k : s.n;
    lda = acols + pad;
    ldb = bcols + pad;
    ldc = s.n + pad;
    a.resize(std::max<int64_t>(1, arows * lda));
    b.resize(std::max<int64_t>(1, brows * ldb));
    c.resize(s.m * ldc);
    for (float &v : a)
      v = dist(rng);
    for (float &v : b)
      v = dist(rng);
    for (float &v : c)
      v = dist(rng);
  }

  // alpha·op(A)·op(B) + beta·C in double; C's padding kept.
  std::vector<double> want(float alpha, float beta) const {
    std::vector<double> w(c.begin(), c.end());
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < s.k; ++p)
          sum += double(ta ? a[p * lda + i] : a[i * lda + p]) *
                 (tb ? b[j * ldb + p] : b[p * ldb + j]);
        w[i * ldc + j] =
            alpha * sum + (beta == 0.f ? 0.0 : beta * double(c[i * ldc + j]));
      }
    return w;
  }

  std::vector<float> run(float alpha, float beta, int threads,
                         std::vector<float> cc) const {
    omp_set_num_threads(threads);
    EXPECT_TRUE(cpu::galaxySgemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda,
                                 b.data(), ldb, beta, cc.data(), ldc)
                    .ok());
    return cc;
  }
};

std::string label(const Problem &p) {
  return absl::StrFormat("%c%c m=%d n=%d k=%d", p.ta ? 'T' : 'N',
                         p.tb ? 'T' : 'N', p.s.m, p.s.n, p.s.k);
}

class GalaxySgemm : public ::testing::Test {
protected:
  void SetUp() override {
    if (!cpu::galaxySgemmAvailable())
      GTEST_SKIP() << "no AVX-512 here: kGalaxy runs oneDNN's sgemm";
    threads_ = omp_get_max_threads();
  }
  void TearDown() override { omp_set_num_threads(threads_); }
  int threads_ = 1;
};

// Tails of the 6 x 64 and 8 x 48 tiles (and of the 16-row packing groups
// for A·Bᵀ), sums of 0 and 1 terms, both ways of packing B (whole up to
// 2 MiB, else panel by panel) and sums longer than one block (1024 deep for
// a 64-column panel, 1365 for 48 columns; 1024-2048 deep for packed rows),
// which the
// kernel splits: every element within fp32 rounding of the double sum. C's
// padding must be left alone.
TEST_F(GalaxySgemm, MatchesDoubleSumsAtEveryTail) {
  std::mt19937 rng(41);
  // 6 x 64 tiles; 8 x 48 where m is a multiple of 8 but not of 6.
  const std::vector<Shape> stream = {
      {1, 1, 1},
      {7, 63, 17},
      {13, 65, 0},
      {6, 130, 5},
      {12, 64, 1},
      {19, 129, 2100},
      {8, 47, 1},
      {16, 49, 2100},
      {40, 97, 17},
      {8, 96, 0},
      // B past 2 MiB: packed panel by panel (dy·w), the sum in blocks
      {13, 200, 2800},
      {16, 150, 3600},
      // one panel, many rows: two threads split the rows
      {2000, 40, 100}};
  const std::vector<Shape> lanes = {{1, 1, 1},     {17, 7, 16}, {65, 13, 0},
                                    {130, 6, 33},  {64, 12, 1}, {63, 19, 2100},
                                    {129, 7, 1100}};
  for (auto [ta, tb] : {std::pair{false, false}, {true, false}, {false, true}})
    for (Shape s : tb ? lanes : stream)
      for (auto [alpha, beta] :
           {std::pair{1.f, 0.f}, {-0.5f, 1.f}, {1.5f, 0.25f}}) {
        Problem p(ta, tb, s, rng);
        std::vector<float> got = p.run(alpha, beta, 2, p.c);
        expectClose(got, p.want(alpha, beta), 1e-5, 2e-5 * std::sqrt(s.k + 1),
                    label(p));
      }
}

// beta = 0 leaves C unread: NaN there must not reach the result.
TEST_F(GalaxySgemm, BetaZeroIgnoresNaNInC) {
  std::mt19937 rng(43);
  for (auto [tb, shape] : {std::pair{false, Shape{70, 70, 40}},
                           {true, Shape{70, 70, 40}},
                           {false, Shape{16, 150, 3600}},
                           {true, Shape{128, 300, 1100}},
                           {false, Shape{128, 700, 800}}}) {
    Problem p(false, tb, shape, rng);
    std::vector<float> nan(p.c.size(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> got = p.run(2.f, 0.f, 2, nan);
    std::vector<double> want = p.want(2.f, 0.f);
    for (int64_t i = 0; i < p.s.m; ++i)
      for (int64_t j = p.s.n; j < p.ldc; ++j)
        want[i * p.ldc + j] = 0; // padding: still NaN, not compared
    for (int64_t i = 0; i < p.s.m; ++i)
      for (int64_t j = p.s.n; j < p.ldc; ++j)
        got[i * p.ldc + j] = 0;
    expectClose(got, want, 1e-5, 1e-4, label(p));
  }
}

// Each tile of C is summed by one thread in one order: one and two threads
// give the same bits (big enough that two threads do run).
TEST_F(GalaxySgemm, BitsDoNotDependOnThreads) {
  std::mt19937 rng(47);
  for (auto [ta, tb] : {std::pair{false, false}, {true, false}, {false, true}})
    for (Shape s :
         {Shape{128, 300, 1100}, Shape{200, 130, 768}, Shape{128, 700, 800},
          Shape{90, 640, 900}, Shape{2000, 40, 100}}) {
      Problem p(ta, tb, s, rng);
      const std::vector<float> one = p.run(0.75f, 1.f, 1, p.c),
                               two = p.run(0.75f, 1.f, 2, p.c);
      expectClose(one, p.want(0.75f, 1.f), 1e-5, 2e-5 * std::sqrt(s.k + 1),
                  label(p));
      EXPECT_EQ(0,
                std::memcmp(one.data(), two.data(), one.size() * sizeof(float)))
          << label(p);
    }
}

// linear's forward with the bias in the epilogue gives the bits of the bias
// copied into C then beta = 1 (gemm_kernels.cc takes either path), also when
// the sum is cut into blocks (k = 3072 at 128 rows).
TEST_F(GalaxySgemm, BiasEpilogueBitsEqualBiasCopyThenBetaOne) {
  std::mt19937 rng(53);
  for (Shape s : {Shape{128, 768, 768}, Shape{128, 70, 3072},
                  Shape{37, 10, 768}, Shape{200, 13, 2500}}) {
    Buf x = Buf::random({s.m, s.k}, rng), w = Buf::random({s.n, s.k}, rng),
        b = Buf::random({s.n}, rng);
    std::vector<float> fused(s.m * s.n, -7.f), copied(s.m * s.n);
    for (int64_t r = 0; r < s.m; ++r)
      std::memcpy(copied.data() + r * s.n, b.f.data(), s.n * sizeof(float));
    ASSERT_TRUE(cpu::galaxySgemmBias(s.m, s.n, s.k, x.f.data(), s.k, w.f.data(),
                                     s.k, b.f.data(), fused.data(), s.n)
                    .ok());
    ASSERT_TRUE(cpu::galaxySgemm(false, true, s.m, s.n, s.k, 1.f, x.f.data(),
                                 s.k, w.f.data(), s.k, 1.f, copied.data(), s.n)
                    .ok());
    EXPECT_EQ(0, std::memcmp(fused.data(), copied.data(),
                             fused.size() * sizeof(float)))
        << s.m << "x" << s.n << "x" << s.k;
  }
}

} // namespace
} // namespace galaxy::rt::testing
