// The bf16 weight-gradient kernel (runtime/cpu/bf16_kernels.h) called
// directly: the sum over operands rounded as toBf16 rounds them, the update
// beta·w + alpha·g, the copy's bits, every tail of the 8x48 tiles and the
// column sweeps of long sums, and the same bits on any thread count.
#include <xmmintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/bf16_bits.h"
#include "runtime/cpu/bf16_copies.h"
#include "runtime/cpu/bf16_kernels.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

std::vector<float> uniform(int64_t n, std::mt19937 &rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float &f : v)
    f = d(rng);
  return v;
}

// beta·w0 + alpha·Σ_r dy[r,i]·x[r,j] over the rounded operands, in double.
std::vector<double> reference(const std::vector<float> &dy,
                              const std::vector<float> &x,
                              const std::vector<float> &w0, int64_t rows,
                              int64_t n, int64_t k, double alpha, double beta) {
  // dyᵀ·x = xwt(dyᵀ, xᵀ)
  std::vector<double> want =
      xwt(transposed(roundedToBf16(dy), rows, n),
          transposed(roundedToBf16(x), rows, k), n, k, rows);
  for (int64_t i = 0; i < n * k; ++i)
    want[i] = (beta == 0 ? 0.0 : beta * w0[i]) + alpha * want[i];
  return want;
}

class Bf16OwnKernels : public ::testing::Test {
protected:
  void SetUp() override {
    if (!cpu::bf16KernelsAvailable())
      GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  }
};

// Shapes around the tile (8 rows of dw by 48 columns, rows summed in pairs):
// one element, odd row counts, n and k off every multiple, and a sum long
// enough (6000 rows) that dw's columns are taken in several sweeps.
TEST_F(Bf16OwnKernels, WeightGradEqualsTheSumOverRoundedOperands) {
  struct Shape {
    int64_t rows, n, k;
  };
  const Shape shapes[] = {{1, 1, 1},     {7, 13, 5},     {33, 9, 50},
                          {128, 24, 96}, {255, 40, 130}, {2, 1030, 17},
                          {6000, 9, 100}};
  std::mt19937 rng(5);
  for (const Shape &s : shapes)
    for (double beta : {0.0, 0.75})
      for (bool withCopy : {false, true}) {
        const std::vector<float> dy = uniform(s.rows * s.n, rng, -1, 1),
                                 x = uniform(s.rows * s.k, rng, -1, 1);
        std::vector<float> w0 = uniform(s.n * s.k, rng, -1, 1);
        if (beta == 0) // beta = 0 must leave dw unread
          std::fill(w0.begin(), w0.end(),
                    std::numeric_limits<float>::quiet_NaN());
        const double alpha = -0.5;
        const std::vector<double> want =
            reference(dy, x, w0, s.rows, s.n, s.k, alpha, beta);
        std::vector<float> first;
        for (int threads : {1, 2}) {
          const std::string what =
              absl::StrFormat("rows %d n %d k %d beta %g copy %d threads %d",
                              s.rows, s.n, s.k, beta, withCopy, threads);
          std::vector<float> w = w0;
          std::vector<uint16_t> copy(s.n * s.k, 0xdead);
          cpu::bf16WeightGrad(dy.data(), x.data(), s.rows, s.n, s.k,
                              float(alpha), float(beta), w.data(),
                              withCopy ? copy.data() : nullptr, threads);
          // fp32 sums of |terms| <= rows: a few ulps of that per element.
          expectClose(w, want, 1e-5, 1e-6 * double(s.rows), what);
          if (withCopy) {
            std::vector<uint16_t> fresh(s.n * s.k);
            cpu::toBf16(w.data(), fresh.data(), s.n * s.k, 1);
            EXPECT_EQ(0, std::memcmp(copy.data(), fresh.data(),
                                     fresh.size() * sizeof(uint16_t)))
                << what << ": the copy is not the new values' rounding";
          }
          // Each tile is summed by one thread in one order.
          if (first.empty())
            first = w;
          else
            EXPECT_EQ(0, std::memcmp(first.data(), w.data(),
                                     w.size() * sizeof(float)))
                << what << ": differs from 1 thread";
        }
      }
}

// Operands in [1, 2) with random low bits: their bf16 roundings have 8
// significant bits, products 16 and a sum of 12 of them stays within fp32's
// 24, so the kernel's result is exact and must equal the double sum over
// toBf16's roundings bit for bit (truncating, or rounding half up, would
// not). The update with beta = 0.5 on such values is exact too.
TEST_F(Bf16OwnKernels, WeightGradRoundsOperandsToNearestEvenExactly) {
  std::mt19937 rng(11);
  const int64_t rows = 12, n = 19, k = 53;
  std::vector<float> dy = uniform(rows * n, rng, 1, 2),
                     x = uniform(rows * k, rng, 1, 2);
  // Ties (dropped half exactly 0x8000) with odd and even kept halves.
  for (int64_t i = 0; i < 8; ++i) {
    uint32_t u = 0x3f808000u + (uint32_t(i) << 16);
    std::memcpy(&x[i], &u, 4);
    std::memcpy(&dy[i], &u, 4);
  }
  const std::vector<float> w0 = roundedToBf16(uniform(n * k, rng, 1, 2));
  const std::vector<double> want = reference(dy, x, w0, rows, n, k, 1.0, 0.5);
  std::vector<float> w = w0;
  cpu::bf16WeightGrad(dy.data(), x.data(), rows, n, k, 1.f, 0.5f, w.data(),
                      nullptr, 2);
  for (int64_t i = 0; i < n * k; ++i)
    ASSERT_EQ(double(w[i]), want[i]) << "element " << i;
}

// The copy's bits for values the fast conversion (vcvtneps2bf16) would get
// wrong or might: subnormals (it reads them as zero), NaN, infinities, signed
// zeros, ties. alpha = 0 and beta = 1 leave w as it was, so the copy must be
// toBf16's rounding of those very values. Denormals kept (MXCSR) while it
// runs, as GALAXY_DENORMALS=keep runs.
TEST_F(Bf16OwnKernels, WeightGradCopiesSpecialValuesAsToBf16Rounds) {
  const int64_t rows = 4, n = 9, k = 50;
  const uint32_t specials[] = {0x00000001u, 0x807fffffu, 0x00400000u,
                               0x00008000u, 0x7fc00001u, 0xffc12345u,
                               0x7f800000u, 0xff800000u, 0x80000000u,
                               0x3f808000u, 0x3f818000u, 0x7f7fffffu};
  std::mt19937 rng(3);
  std::vector<float> w = uniform(n * k, rng, -1, 1);
  for (int64_t i = 0; i < n * k; i += 3)
    std::memcpy(&w[i], &specials[(i / 3) % std::size(specials)], 4);
  const std::vector<float> dy = uniform(rows * n, rng, -1, 1),
                           x = uniform(rows * k, rng, -1, 1);
  const std::vector<float> w0 = w;
  std::vector<uint16_t> copy(n * k), want(n * k);
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr & ~0x8040u); // FTZ and DAZ off
  cpu::bf16WeightGrad(dy.data(), x.data(), rows, n, k, 0.f, 1.f, w.data(),
                      copy.data(), 1);
  _mm_setcsr(csr);
  cpu::toBf16(w.data(), want.data(), n * k, 1);
  for (int64_t i = 0; i < n * k; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &w[i], 4);
    std::memcpy(&b, &w0[i], 4);
    // w = 1·w + 0·g keeps each value (-0 may become +0; NaN stays NaN).
    if (std::isnan(w0[i]))
      ASSERT_TRUE(std::isnan(w[i])) << "w changed at " << i;
    else
      ASSERT_TRUE(w[i] == w0[i] && (w[i] != 0 || a == b || b == 0x80000000u))
          << "w changed at " << i;
    ASSERT_EQ(copy[i], want[i])
        << "copy at " << i << " (w bits 0x" << std::hex << b << ")";
  }
}

// toBf16's bits do not depend on MXCSR: runs set DAZ and FTZ (denormals
// flushed, the default), and the fast conversion's subnormal test must not
// read subnormals as zero then (vfpclassps would).
TEST_F(Bf16OwnKernels, ToBf16RoundsSubnormalsWhateverTheDenormalsMode) {
  std::vector<float> x(100);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t u = (i % 2 ? 0x80000000u : 0u) + 0x00000001u +
                       uint32_t(i) * 0x0001f3a7u % 0x007fffffu;
    std::memcpy(&x[i], &u, 4);
  }
  const unsigned csr = _mm_getcsr();
  for (unsigned mode : {0u, 0x8040u}) {
    _mm_setcsr((csr & ~0x8040u) | mode);
    std::vector<uint16_t> got(x.size());
    cpu::toBf16(x.data(), got.data(), int64_t(x.size()), 1);
    _mm_setcsr(csr);
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &x[i], 4);
      ASSERT_EQ(got[i], bf16RoundedBits(u) >> 16)
          << "element " << i << " MXCSR DAZ/FTZ bits 0x" << std::hex << mode;
    }
  }
}

// y = x·wᵀ + bias in double over x rounded; w is bf16 bits already.
std::vector<double> linearReference(const std::vector<float> &x,
                                    const std::vector<uint16_t> &w,
                                    const std::vector<float> &bias, int64_t m,
                                    int64_t n, int64_t k) {
  std::vector<float> wf(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const uint32_t u = uint32_t(w[i]) << 16;
    std::memcpy(&wf[i], &u, 4);
  }
  std::vector<double> want = xwt(roundedToBf16(x), wf, m, n, k);
  if (!bias.empty())
    for (int64_t i = 0; i < m * n; ++i)
      want[i] += bias[i % n];
  return want;
}

std::vector<uint16_t> bf16Bits(const std::vector<float> &v) {
  std::vector<uint16_t> b(v.size());
  cpu::toBf16(v.data(), b.data(), static_cast<int64_t>(v.size()), 1);
  return b;
}

// Shapes around the forward's tile (6 rows of w by 64 rows of x, x packed 16
// rows by 16 pairs at a time): one tile, tails in every dimension, k not a
// multiple of 32, more rows than one block.
TEST_F(Bf16OwnKernels, LinearEqualsTheSumOverRoundedOperands) {
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{1, 1, 2},     {64, 6, 32},   {65, 7, 34},
                          {130, 13, 50}, {200, 20, 62}, {128, 12, 768},
                          {128, 64, 768}}; // the last: two threads
  std::mt19937 rng(7);
  for (const Shape &s : shapes)
    for (bool withBias : {false, true}) {
      const std::vector<float> x = uniform(s.m * s.k, rng, -1, 1);
      const std::vector<uint16_t> w = bf16Bits(uniform(s.n * s.k, rng, -1, 1));
      const std::vector<float> bias =
          withBias ? uniform(s.n, rng, -1, 1) : std::vector<float>{};
      const std::vector<double> want =
          linearReference(x, w, bias, s.m, s.n, s.k);
      std::vector<float> first;
      for (int threads : {1, 2}) {
        const std::string what =
            absl::StrFormat("m %d n %d k %d bias %d threads %d", s.m, s.n, s.k,
                            withBias, threads);
        std::vector<float> y(s.m * s.n,
                             std::numeric_limits<float>::quiet_NaN());
        cpu::bf16Linear(x.data(), w.data(), withBias ? bias.data() : nullptr,
                        y.data(), s.m, s.n, s.k, threads);
        expectClose(y, want, 1e-5, 1e-6 * double(s.k), what);
        if (first.empty())
          first = y;
        else
          EXPECT_EQ(
              0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float)))
              << what << ": differs from 1 thread";
      }
    }
}

// As the weight gradient's exact test: x in [1, 2) with ties, w's bits from
// such values, sums of 12 products exact in fp32.
TEST_F(Bf16OwnKernels, LinearRoundsXToNearestEvenExactly) {
  std::mt19937 rng(13);
  const int64_t m = 70, n = 9, k = 12;
  std::vector<float> x = uniform(m * k, rng, 1, 2);
  for (int64_t i = 0; i < 8; ++i) {
    const uint32_t u = 0x3f808000u + (uint32_t(i) << 16);
    std::memcpy(&x[i * k + i % k], &u, 4);
  }
  const std::vector<uint16_t> w = bf16Bits(uniform(n * k, rng, 1, 2));
  const std::vector<float> bias = roundedToBf16(uniform(n, rng, 1, 2));
  const std::vector<double> want = linearReference(x, w, bias, m, n, k);
  std::vector<float> y(m * n);
  cpu::bf16Linear(x.data(), w.data(), bias.data(), y.data(), m, n, k, 2);
  for (int64_t i = 0; i < m * n; ++i)
    ASSERT_EQ(double(y[i]), want[i]) << "element " << i;
}

// The input gradient dx = dy·w over bfloat16 bits: tails of both tile shapes
// (6 x 64, and 8 x 48 where m is a multiple of 8 but not of 6), an odd count
// of pairs, sums past one block of pairs (1024 pairs for 64 columns, 1365 for
// 48), no pairs at all (zeros), the same bits on one and two threads.
TEST_F(Bf16OwnKernels, InputGradEqualsTheSumOverBf16Operands) {
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{1, 2, 1},
                          {7, 18, 63},
                          {13, 34, 65},
                          {16, 2, 47},
                          {40, 6, 97},
                          {6, 2900, 130},
                          {16, 2800, 49},
                          {8, 0, 20},
                          // past 2^22 multiply-adds: two threads, both tile
                          // shapes, the second with two blocks of pairs
                          {128, 768, 768},
                          {130, 2200, 130}};
  std::mt19937 rng(17);
  for (const Shape &s : shapes) {
    const std::vector<float> dyf = uniform(s.m * s.n, rng, -1, 1),
                             wf = uniform(s.n * s.k, rng, -1, 1);
    const std::vector<uint16_t> dy = bf16Bits(dyf), w = bf16Bits(wf);
    // dy·w = xwt(dy, wᵀ) over the rounded values
    const std::vector<double> want =
        xwt(roundedToBf16(dyf), transposed(roundedToBf16(wf), s.n, s.k), s.m,
            s.k, s.n);
    std::vector<float> first;
    for (int threads : {1, 2}) {
      const std::string what =
          absl::StrFormat("m %d n %d k %d threads %d", s.m, s.n, s.k, threads);
      std::vector<float> dx(s.m * s.k, std::numeric_limits<float>::quiet_NaN());
      cpu::bf16InputGrad(dy.data(), w.data(), dx.data(), s.m, s.n, s.k,
                         threads);
      expectClose(dx, want, 1e-5, 1e-6 * double(s.n + 1), what);
      if (first.empty())
        first = dx;
      else
        EXPECT_EQ(
            0, std::memcmp(first.data(), dx.data(), dx.size() * sizeof(float)))
            << what << ": differs from 1 thread";
    }
  }
}

} // namespace
} // namespace galaxy::rt::testing
