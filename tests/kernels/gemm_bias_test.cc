// linear's bias in oneDNN's matmul epilogue (gemm_kernels.cc linearKernel)
// against the pass it replaces, C filled with the bias then beta = 1: the same
// bits, so plans compute what they computed before, whichever path a shape
// takes.
#include <cstring>

#include "runtime/cpu/gemm.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

// BERT-base's linear shapes (x·Wᵀ + b, 128 rows) and a ragged one.
TEST(GemmBias, EpilogueBitsEqualBiasCopyThenBetaOne) {
  std::mt19937 rng(31);
  struct Shape {
    int64_t m, n, k;
  };
  for (Shape s : {Shape{128, 768, 768}, Shape{128, 3072, 768},
                  Shape{128, 768, 3072}, Shape{37, 10, 768}}) {
    for (bool tb : {true, false}) {
      Buf x = Buf::random({s.m, s.k}, rng),
          w = Buf::random(tb ? std::vector<int64_t>{s.n, s.k}
                             : std::vector<int64_t>{s.k, s.n},
                          rng),
          b = Buf::random({s.n}, rng);
      const int64_t ldb = tb ? s.k : s.n;
      std::vector<float> fused(s.m * s.n, -7.f), copied(s.m * s.n);
      for (int64_t r = 0; r < s.m; ++r)
        std::memcpy(copied.data() + r * s.n, b.f.data(), s.n * sizeof(float));
      ASSERT_TRUE(cpu::onednnMatmulSgemmBias(false, tb, s.m, s.n, s.k,
                                             x.f.data(), s.k, w.f.data(), ldb,
                                             b.f.data(), fused.data(), s.n)
                      .ok());
      ASSERT_TRUE(cpu::onednnMatmulSgemm(false, tb, s.m, s.n, s.k, 1.f,
                                         x.f.data(), s.k, w.f.data(), ldb, 1.f,
                                         copied.data(), s.n)
                      .ok());
      ASSERT_EQ(0, std::memcmp(fused.data(), copied.data(),
                               fused.size() * sizeof(float)))
          << s.m << "x" << s.n << "x" << s.k << (tb ? " NT" : " NN");
    }
  }
}

// The bf16 twin (native bf16 linear's forward): bf16 operands, fp32 bias in
// the epilogue, the same bits as the bias copied into C then beta = 1.
TEST(GemmBias, Bf16EpilogueBitsEqualBiasCopyThenBetaOne) {
  if (!cpu::nativeBf16Matmul())
    GTEST_SKIP() << "no AVX512-BF16 / AMX: bf16 plans are emulated here";
  std::mt19937 rng(33);
  std::uniform_int_distribution<int> bits(0x3c00, 0x4040); // ~[0.008, 3]
  struct Shape {
    int64_t m, n, k;
  };
  for (Shape s :
       {Shape{128, 768, 768}, Shape{128, 3072, 768}, Shape{37, 10, 96}})
    for (bool tb : {true, false}) {
      std::vector<uint16_t> x(s.m * s.k), w(s.n * s.k);
      for (uint16_t &v : x)
        v = uint16_t(bits(rng) | (rng() & 1 ? 0x8000 : 0));
      for (uint16_t &v : w)
        v = uint16_t(bits(rng) | (rng() & 1 ? 0x8000 : 0));
      Buf b = Buf::random({s.n}, rng);
      const int64_t ldb = tb ? s.k : s.n;
      std::vector<float> fused(s.m * s.n, -7.f), copied(s.m * s.n);
      for (int64_t r = 0; r < s.m; ++r)
        std::memcpy(copied.data() + r * s.n, b.f.data(), s.n * sizeof(float));
      ASSERT_TRUE(cpu::onednnMatmulBf16Bias(false, tb, s.m, s.n, s.k, x.data(),
                                            s.k, w.data(), ldb, b.f.data(),
                                            fused.data(), s.n)
                      .ok());
      ASSERT_TRUE(cpu::onednnMatmulBf16(false, tb, s.m, s.n, s.k, 1.f, x.data(),
                                        s.k, w.data(), ldb, 1.f, copied.data(),
                                        s.n)
                      .ok());
      ASSERT_EQ(0, std::memcmp(fused.data(), copied.data(),
                               fused.size() * sizeof(float)))
          << s.m << "x" << s.n << "x" << s.k << (tb ? " NT" : " NN");
    }
}

// Through the kernel: linear with GEMM forced to oneDNN's matmul (bias in the
// epilogue) gives the bits of bias + the same GEMM with beta = 1, and matches
// the naive GEMM's result within float rounding.
// linear with a bias through the backend, for each GEMM whose epilogue adds
// it (gemm_kernels.cc epilogueBiasGemm): the bits of the bias copied into C
// then that GEMM with beta = 1, and within rounding of the naive loops.
TEST(GemmBias, LinearKernelTakesTheEpilogue) {
  std::mt19937 rng(32);
  const int64_t m = 64, n = 96, k = 80;
  Buf x = Buf::random({m, k}, rng), w = Buf::random({n, k}, rng),
      b = Buf::random({n}, rng), y0 = Buf::zeros({m, n});
  const std::vector<float> naive =
      runOk(Op("linear").i("transpose_w", 1), {&x, &w, &b}, {&y0}, {},
            &cpuBackend(cpu::GemmKind::kNaive, 1));
  for (cpu::GemmKind kind :
       {cpu::GemmKind::kOneDnnMatmul, cpu::GemmKind::kGalaxy}) {
    if (kind == cpu::GemmKind::kGalaxy && !cpu::galaxySgemmAvailable())
      continue;
    const std::string name(cpu::gemmKindName(kind));
    Buf y = Buf::zeros({m, n});
    const std::vector<float> got =
        runOk(Op("linear").i("transpose_w", 1), {&x, &w, &b}, {&y}, {},
              &cpuBackend(kind, 2));
    std::vector<float> want(m * n);
    for (int64_t r = 0; r < m; ++r)
      std::memcpy(want.data() + r * n, b.f.data(), n * sizeof(float));
    ASSERT_TRUE(cpu::sgemmFor(kind)(false, true, m, n, k, 1.f, x.f.data(), k,
                                    w.f.data(), k, 1.f, want.data(), n)
                    .ok());
    EXPECT_EQ(0,
              std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
        << name;
    expectClose(got, std::vector<double>(naive.begin(), naive.end()), 1e-5,
                1e-5, "linear + bias vs naive, " + name);
  }
}

} // namespace
} // namespace galaxy::rt::testing
