// bf16 plans on the CPU backend (docs/kernels.md "Matmul precision"): the
// bfloat16 rounding helper, and linear / linear_weight_grad / matmul with
// KernelContext::matmulDType = MATMUL_BF16 against an fp64 reference over
// bf16-rounded operands (and visibly unlike the fp32 result).
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu/gemm.h"
#include "runtime/cpu/vector_loops.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

uint32_t bitsOf(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float fromBits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
float rounded(float x) {
  float y;
  cpu::roundToBf16(&x, &y, 1);
  return y;
}

// An independent reference for normal-range values: keep 8 significant bits
// with the FPU's round-to-nearest-even (nearbyint) in double.
double referenceBf16(float x) {
  int e = 0;
  const double m = std::frexp(static_cast<double>(x), &e); // |m| in [0.5, 1)
  return std::ldexp(std::nearbyint(m * 256.0) / 256.0, e);
}

constexpr KernelContext kBf16{
    .seed = 1, .step = 1, .matmulDType = plan::MATMUL_BF16};

TEST(RoundToBf16, KnownValuesAndTiesToEven) {
  EXPECT_EQ(rounded(1.0f), 1.0f);
  EXPECT_EQ(rounded(3.14159265f), 3.140625f);
  EXPECT_EQ(rounded(-2.5f), -2.5f); // representable: unchanged
  // Ties: 1 + 2^-8 lies halfway between 1 (even) and 1 + 2^-7 (odd).
  EXPECT_EQ(rounded(1.0f + 0x1p-8f), 1.0f);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(rounded(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
  EXPECT_EQ(rounded(-(1.0f + 3 * 0x1p-8f)), -(1.0f + 0x1p-6f));
  // Just above and just below the half.
  EXPECT_EQ(rounded(1.0f + 0x1p-8f + 0x1p-23f), 1.0f + 0x1p-7f);
  EXPECT_EQ(rounded(1.0f + 0x1p-8f - 0x1p-23f), 1.0f);
  // A carry out of the mantissa bumps the exponent.
  EXPECT_EQ(rounded(fromBits(0x3fffffffu)), 2.0f);
}

TEST(RoundToBf16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(rounded(inf), inf);
  EXPECT_EQ(rounded(-inf), -inf);
  // Beyond the largest bf16 (0x7f7f) by more than half an ulp: inf.
  EXPECT_EQ(rounded(FLT_MAX), inf);
  EXPECT_EQ(rounded(-FLT_MAX), -inf);
  EXPECT_EQ(bitsOf(rounded(fromBits(0x7f7f7fffu))), 0x7f7f0000u);
  // NaNs stay NaN: naive rounding turns 0x7f800001 into inf and 0x7fffffff
  // into -0.
  for (uint32_t nan :
       {0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0xffffffffu, 0xff800001u}) {
    const float r = rounded(fromBits(nan));
    EXPECT_TRUE(std::isnan(r)) << std::hex << nan << " -> " << bitsOf(r);
    EXPECT_EQ(bitsOf(r) >> 31, nan >> 31) << std::hex << nan; // sign kept
  }
  EXPECT_EQ(bitsOf(rounded(-0.0f)), 0x80000000u);
  EXPECT_EQ(bitsOf(rounded(0.0f)), 0u);
  // Subnormals round on the same bits: a tie to even 0, a tie to even 2.
  EXPECT_EQ(bitsOf(rounded(fromBits(0x00000001u))), 0u);
  EXPECT_EQ(bitsOf(rounded(fromBits(0x00008000u))), 0u);
  EXPECT_EQ(bitsOf(rounded(fromBits(0x00018000u))), 0x00020000u);
}

TEST(RoundToBf16, RandomValuesMatchAReferenceInPlaceToo) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mant(-1.f, 1.f);
  std::uniform_int_distribution<int> exp(-100, 100);
  std::vector<float> x(1003); // not a multiple of any vector width
  for (float &v : x)
    v = std::ldexp(mant(rng), exp(rng));
  // Exact ties too, both parities: a kept half and a dropped half of 0x8000.
  for (int i = 0; i < 40; ++i)
    x[i] = fromBits((bitsOf(x[i]) & 0xffff0000u) | 0x8000u);
  std::vector<float> y(x.size());
  cpu::roundToBf16(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(static_cast<double>(y[i]), referenceBf16(x[i]))
        << "x = " << x[i] << " (bits " << std::hex << bitsOf(x[i]) << ")";
    EXPECT_EQ(bitsOf(y[i]) & 0xffffu, 0u);
  }
  std::vector<float> inPlace = x;
  cpu::roundToBf16(inPlace.data(), inPlace.data(),
                   static_cast<int64_t>(inPlace.size()));
  EXPECT_EQ(inPlace, y);
}

// Row-major C = alpha·op(A)·op(B) + beta·C0 in double, for each of `batch`
// matrices stored one after another.
std::vector<double> gemmRef(const std::vector<float> &a,
                            const std::vector<float> &b, int64_t batch, bool ta,
                            bool tb, int64_t m, int64_t n, int64_t k,
                            double alpha, double beta,
                            const std::vector<float> &c0) {
  std::vector<double> c(batch * m * n);
  for (int64_t q = 0; q < batch; ++q)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          const float av = a[q * m * k + (ta ? p * m + i : i * k + p)];
          const float bv = b[q * k * n + (tb ? j * k + p : p * n + j)];
          s += static_cast<double>(av) * bv;
        }
        const int64_t o = q * m * n + i * n + j;
        c[o] = alpha * s + (beta != 0 ? beta * c0[o] : 0.0);
      }
  return c;
}

double maxAbsDiff(const std::vector<float> &got,
                  const std::vector<double> &want) {
  double d = 0;
  for (size_t i = 0; i < got.size(); ++i)
    d = std::max(d, std::fabs(got[i] - want[i]));
  return d;
}

// The GEMM paths a bf16 operand goes through: the measured choice (oneDNN's
// batched primitive for matmul), OpenBLAS over 2 threads (small batched
// matrices one per thread) and the naive loop.
std::vector<std::pair<std::string, Backend *>> backends() {
  return {{"default", &cpuBackend()},
          {"openblas x2", &cpuBackend(cpu::GemmKind::kOpenBlas, 2)},
          {"naive", &cpuBackend(cpu::GemmKind::kNaive, 1)}};
}

// The bf16 result equals the fp64 product of the rounded operands (fp32
// accumulation noise only) and is far from the fp32 product of the raw ones:
// bf16 rounding moves products by ~2^-9 relative.
constexpr double kTol = 2e-5, kVisible = 1e-3;

TEST(Bf16Kernels, LinearEqualsRoundedReference) {
  std::mt19937 rng(11);
  const int64_t rows = 6, k = 64, n = 24;
  for (auto [name, backend] : backends())
    for (int tw : {0, 1})
      for (bool bias : {false, true}) {
        Buf x = Buf::random({2, 3, k}, rng);
        Buf w = Buf::random(
            tw ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, rng);
        Buf b = Buf::random({n}, rng);
        const std::vector<float> x0 = x.f, w0 = w.f;
        Buf y = Buf::zeros({2, 3, n});
        std::vector<Buf *> in = {&x, &w};
        if (bias)
          in.push_back(&b);
        runOk(Op("linear").i("transpose_w", tw), in, {&y}, kBf16, backend);
        const std::string what =
            name + " linear tw=" + std::to_string(tw) + (bias ? " +bias" : "");
        EXPECT_EQ(x.f, x0) << what << ": x must not be rounded in place";
        EXPECT_EQ(w.f, w0) << what << ": w must not be rounded in place";
        // y = x·op(w) + b with the bias in fp32 (it is C, not an operand).
        std::vector<float> bias0(rows * n, 0.f);
        if (bias)
          for (int64_t r = 0; r < rows; ++r)
            std::copy(b.f.begin(), b.f.end(), bias0.begin() + r * n);
        std::vector<double> want =
            gemmRef(roundedToBf16(x0), roundedToBf16(w0), 1, false, tw != 0,
                    rows, n, k, 1.0, bias ? 1.0 : 0.0, bias0);
        expectClose(y.f, want, kTol, kTol, what);
        std::vector<double> fp32 = gemmRef(x0, w0, 1, false, tw != 0, rows, n,
                                           k, 1.0, bias ? 1.0 : 0.0, bias0);
        EXPECT_GT(maxAbsDiff(y.f, fp32), kVisible) << what << ": ran in fp32?";
      }
}

// Fused SGD: dw = alpha·dyᵀx + beta·dw with dw the fp32 parameter. alpha is
// small, so beta·dw dominates and rounding dw to bf16 (~4e-3 relative) would
// break the tolerance by far.
TEST(Bf16Kernels, LinearWeightGradKeepsTheParameterFp32) {
  std::mt19937 rng(12);
  const int64_t rows = 10, n = 16, k = 48;
  for (auto [name, backend] : backends())
    for (auto [alpha, beta] :
         {std::pair{1.0, 0.0}, std::pair{-1e-3, 0.999}, std::pair{1.0, 1.0}}) {
      Buf dy = Buf::random({2, 5, n}, rng), x = Buf::random({2, 5, k}, rng);
      Buf dw = Buf::random({n, k}, rng);
      const std::vector<float> dy0 = dy.f, x0 = x.f, dw0 = dw.f;
      runOk(Op("linear_weight_grad").f("alpha", alpha).f("beta", beta),
            {&dy, &x}, {&dw}, kBf16, backend);
      const std::string what =
          name + " linear_weight_grad alpha=" + std::to_string(alpha) +
          " beta=" + std::to_string(beta);
      EXPECT_EQ(dy.f, dy0) << what;
      EXPECT_EQ(x.f, x0) << what;
      // dyᵀ[n, rows]·x[rows, k]: A = dy read transposed.
      std::vector<double> want =
          gemmRef(roundedToBf16(dy0), roundedToBf16(x0), 1, true, false, n, k,
                  rows, alpha, beta, dw0);
      expectClose(dw.f, want, kTol, kTol * std::fabs(alpha) + 1e-7, what);
      if (beta == 0.0) {
        std::vector<double> fp32 =
            gemmRef(dy0, x0, 1, true, false, n, k, rows, alpha, beta, dw0);
        EXPECT_GT(maxAbsDiff(dw.f, fp32), kVisible) << what << ": fp32?";
      }
    }
}

TEST(Bf16Kernels, BatchedMatmulEqualsRoundedReference) {
  std::mt19937 rng(13);
  const int64_t m = 7, k = 40, n = 9;
  for (auto [name, backend] : backends())
    for (int ta : {0, 1})
      for (int tb : {0, 1}) {
        Buf a = Buf::random(ta ? std::vector<int64_t>{2, 3, k, m}
                               : std::vector<int64_t>{2, 3, m, k},
                            rng);
        Buf b = Buf::random(tb ? std::vector<int64_t>{2, 3, n, k}
                               : std::vector<int64_t>{2, 3, k, n},
                            rng);
        const std::vector<float> a0 = a.f, b0 = b.f;
        Buf c = Buf::zeros({2, 3, m, n});
        runOk(Op("matmul")
                  .i("transpose_a", ta)
                  .i("transpose_b", tb)
                  .f("alpha", 0.5),
              {&a, &b}, {&c}, kBf16, backend);
        const std::string what = name + " matmul ta=" + std::to_string(ta) +
                                 " tb=" + std::to_string(tb);
        EXPECT_EQ(a.f, a0) << what;
        EXPECT_EQ(b.f, b0) << what;
        std::vector<double> want = gemmRef(roundedToBf16(a0), roundedToBf16(b0),
                                           6, ta, tb, m, n, k, 0.5, 0.0, {});
        expectClose(c.f, want, kTol, kTol, what);
        std::vector<double> fp32 =
            gemmRef(a0, b0, 6, ta, tb, m, n, k, 0.5, 0.0, {});
        EXPECT_GT(maxAbsDiff(c.f, fp32), kVisible / 2) << what << ": fp32?";
      }
}

// Operands of 2^20 elements are rounded by several threads; the default
// context (fp32) still multiplies the raw values.
TEST(Bf16Kernels, LargeOperandsAndTheFp32Default) {
  std::mt19937 rng(14);
  const int64_t rows = 1024, k = 1024, n = 3;
  Buf x = Buf::random({rows, k}, rng), w = Buf::random({n, k}, rng);
  Buf y = Buf::zeros({rows, n});
  Backend *backend = &cpuBackend(cpu::GemmKind::kOpenBlas, 2);
  runOk(Op("linear"), {&x, &w}, {&y}, kBf16, backend);
  std::vector<double> want = gemmRef(roundedToBf16(x.f), roundedToBf16(w.f), 1,
                                     false, true, rows, n, k, 1.0, 0.0, {});
  expectClose(y.f, want, 1e-4, 1e-4, "linear bf16 1024x1024");
  Buf y32 = Buf::zeros({rows, n});
  runOk(Op("linear"), {&x, &w}, {&y32}, KernelContext{}, backend);
  std::vector<double> fp32 =
      gemmRef(x.f, w.f, 1, false, true, rows, n, k, 1.0, 0.0, {});
  expectClose(y32.f, fp32, 1e-4, 1e-4, "linear fp32 1024x1024");
  EXPECT_GT(maxAbsDiff(y32.f, want), kVisible) << "the fp32 default rounded";
}

} // namespace
} // namespace galaxy::rt::testing
