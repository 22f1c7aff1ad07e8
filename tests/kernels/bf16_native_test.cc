// Native bf16 on the CPU (docs/kernels.md "Matmul precision"): where the CPU
// has AVX512-BF16 the default backend multiplies bfloat16 operands in oneDNN's
// bf16 matmul, agreeing with the emulation (fp32 GEMM over rounded copies) up
// to fp32 summation order; a parameter's bfloat16 copy is rounded once per
// weights' version and refreshed after a kernel writes the parameter.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu/bf16_copies.h"
#include "runtime/cpu/bf16_kernels.h"
#include "runtime/cpu/gemm.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

KernelContext bf16Context(uint64_t weightsVersion) {
  KernelContext ctx;
  ctx.seed = 1;
  ctx.step = 1;
  ctx.matmulDType = plan::MATMUL_BF16;
  ctx.weightsVersion = weightsVersion;
  return ctx;
}

// The 16-bit copies the native path multiplies are the upper halves of the
// emulation's rounded fp32 copies, bit for bit: specials, subnormals, ties,
// and a length that leaves a tail after the 16-lane loop.
TEST(Bf16Native, CopiesEqualTheEmulationsRounding) {
  std::mt19937 rng(20);
  std::uniform_real_distribution<float> mant(-1.f, 1.f);
  std::uniform_int_distribution<int> exp(-140, 127);
  std::uniform_int_distribution<uint32_t> bits;
  std::vector<float> x(4099);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::ldexp(mant(rng), exp(rng));
    if (i % 7 == 0) { // any bit pattern: NaNs, infs, subnormals
      const uint32_t u = bits(rng);
      std::memcpy(&x[i], &u, sizeof u);
    }
    if (i % 11 == 0) { // an exact tie
      uint32_t u;
      std::memcpy(&u, &x[i], sizeof u);
      u = (u & 0xffff0000u) | 0x8000u;
      std::memcpy(&x[i], &u, sizeof u);
    }
  }
  x[1] = std::numeric_limits<float>::infinity();
  x[2] = -std::numeric_limits<float>::max();
  const std::vector<float> want = roundedToBf16(x);
  for (int threads : {1, 2}) {
    std::vector<uint16_t> got(x.size());
    cpu::toBf16(x.data(), got.data(), static_cast<int64_t>(x.size()), threads);
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t w;
      std::memcpy(&w, &want[i], sizeof w);
      ASSERT_EQ(got[i], w >> 16) << "element " << i << ", threads " << threads;
    }
  }
}

TEST(Bf16Native, DefaultBackendRunsBf16NativelyOnThisCpu) {
  if (!cpu::nativeBf16Matmul() || !cpu::bf16KernelsAvailable())
    GTEST_SKIP() << "no AVX512-BF16 / AMX: bf16 plans are emulated here";
  EXPECT_NE(cpuBackend().gemmDescription().find("oneDNN bf16 matmul"),
            std::string::npos)
      << cpuBackend().gemmDescription();
  EXPECT_NE(cpuBackend(cpu::GemmKind::kOpenBlas, 2)
                .gemmDescription()
                .find("bf16 plans: emulated"),
            std::string::npos);
}

// A BERT-like shape through both paths: the same rounded operands, so only
// fp32 summation order separates them (k = 768 terms).
TEST(Bf16Native, NativeMatchesTheEmulation) {
  std::mt19937 rng(21);
  const int64_t m = 128, n = 96, k = 768;
  Buf x = Buf::random({m, k}, rng), w = Buf::random({n, k}, rng);
  Buf native = Buf::zeros({m, n}), emulated = Buf::zeros({m, n});
  runOk(Op("linear").i("transpose_w", 1), {&x, &w}, {&native}, bf16Context(0));
  runOk(Op("linear").i("transpose_w", 1), {&x, &w}, {&emulated}, bf16Context(0),
        &cpuBackend(cpu::GemmKind::kOpenBlas, 2));
  std::vector<double> want(emulated.f.begin(), emulated.f.end());
  expectClose(native.f, want, 1e-5, 1e-5, "native vs emulated bf16 linear");
}

// Past the cache's limit the least recently used copies go; a parameter read
// again is rounded again and still multiplies right.
TEST(Bf16Native, CacheStaysWithinItsLimit) {
  std::mt19937 rng(25);
  const int64_t m = 16, n = 24, k = 64;
  const int64_t saved = cpu::bf16CacheLimitBytes();
  cpu::setBf16CacheLimitBytes(cpu::bf16CacheBytes() + 2 * 2 * n * k);
  Buf x = Buf::random({m, k}, rng);
  std::vector<Buf> ws;
  for (int i = 0; i < 4; ++i) {
    ws.push_back(Buf::random({n, k}, rng));
    ws.back().param = true;
  }
  const KernelContext ctx = bf16Context(3000201);
  for (int round = 0; round < 2; ++round)
    for (Buf &w : ws) {
      Buf y = Buf::zeros({m, n});
      runOk(Op("linear").i("transpose_w", 1), {&x, &w}, {&y}, ctx);
      expectClose(y.f, xwt(roundedToBf16(x.f), roundedToBf16(w.f), m, n, k),
                  2e-5, 2e-5, "linear with a bounded cache");
      EXPECT_LE(cpu::bf16CacheBytes(), cpu::bf16CacheLimitBytes());
    }
  cpu::setBf16CacheLimitBytes(saved);
}

// The copy of a parameter is kept under one version (a host write that the
// executor would have announced with a new version is not seen), and dropped
// when a kernel writes the parameter: an optimizer update in place, or fused
// SGD as linear_weight_grad's output.
TEST(Bf16Native, ParameterCopyRefreshedAfterKernelWrites) {
  std::mt19937 rng(22);
  const int64_t m = 16, n = 24, k = 64;
  Buf x = Buf::random({m, k}, rng), w = Buf::random({n, k}, rng);
  w.param = true;
  const KernelContext ctx = bf16Context(3000001); // unlike any executor's
  auto linear = [&](const std::string &what, const std::vector<float> &w0) {
    Buf y = Buf::zeros({m, n});
    runOk(Op("linear").i("transpose_w", 1), {&x, &w}, {&y}, ctx);
    expectClose(y.f, xwt(roundedToBf16(x.f), roundedToBf16(w0), m, n, k), 2e-5,
                2e-5, what);
  };
  const std::vector<float> w0 = w.f;
  linear("first read", w0);
  for (float &v : w.f) // not through a kernel: the copy stays
    v += 0.25f;
  linear("host write under the same version", w0);

  Buf g = Buf::random({n, k}, rng);
  runOk(Op("sgd_update").f("lr", 0.5).f("weight_decay", 0.0), {&w, &g}, {},
        ctx);
  linear("after sgd_update", w.f);

  Buf dy = Buf::random({m, n}, rng);
  runOk(Op("linear_weight_grad").f("alpha", -0.5).f("beta", 1.0), {&dy, &x},
        {&w}, ctx);
  linear("after fused SGD", w.f);
}

// Native fused SGD on a parameter (linear_weight_grad with the parameter as
// output) updates the parameter and rounds its copy: the parameter equals
// beta·w + alpha·(dyᵀ·x over rounded operands) within fp32 summation, and the
// cached copy is exactly the rounding of the new parameter, marked current
// (bf16Weights hands it out without rounding again). Also the forward that
// read the copy before, with a bias, on the same backend.
TEST(Bf16Native, FusedSgdRoundsTheCopyAsItUpdates) {
  if (!cpu::nativeBf16Matmul() || !cpu::bf16KernelsAvailable())
    GTEST_SKIP() << "no AVX512-BF16: bf16 plans are emulated here";
  std::mt19937 rng(23);
  // m = 24: Galaxy's weight-gradient kernel; 1030 rows: past its design range
  // (kBf16WeightGradMaxRows), oneDNN's GEMM then a refresh of the copy.
  for (auto [m, threads] :
       {std::pair<int64_t, int64_t>{24, 1}, {24, 2}, {1030, 2}}) {
    // n·k: a large pass with a tail (the long sum: a small dw will do)
    const int64_t n = m > 1024 ? 40 : 1030, k = m > 1024 ? 50 : 1031;
    Buf x = Buf::random({m, k}, rng), dy = Buf::random({m, n}, rng),
        w = Buf::random({n, k}, rng);
    w.param = true;
    const KernelContext ctx = bf16Context(3000000 + 10 * m + threads);
    Buf y = Buf::zeros({m, n}), bias = Buf::random({n}, rng);
    runOk(Op("linear").i("transpose_w", 1), {&x, &w, &bias}, {&y}, ctx,
          &cpuBackend(cpu::GemmKind::kPerShape, static_cast<int>(threads)));
    std::vector<double> yWant =
        xwt(roundedToBf16(x.f), roundedToBf16(w.f), m, n, k);
    for (int64_t i = 0; i < m * n; ++i)
      yWant[i] += bias.f[i % n];
    expectClose(y.f, yWant, 2e-5, 2e-5, "forward over the copy");
    const std::vector<float> w0 = w.f;
    const double alpha = -0.5, beta = 0.75;
    runOk(Op("linear_weight_grad").f("alpha", alpha).f("beta", beta), {&dy, &x},
          {&w}, ctx,
          &cpuBackend(cpu::GemmKind::kPerShape, static_cast<int>(threads)));
    // dyᵀ·x = xwt(dyᵀ, xᵀ) over the rounded operands.
    std::vector<double> want =
        xwt(transposed(roundedToBf16(dy.f), m, n),
            transposed(roundedToBf16(x.f), m, k), n, k, m);
    for (int64_t i = 0; i < n * k; ++i)
      want[i] = beta * w0[i] + alpha * want[i];
    expectClose(w.f, want, 2e-5, 2e-5, "parameter after fused SGD");
    // The cache's copy under this version, not rounded again here: w's
    // values are changed behind the cache's back first, so a copy left stale
    // (rounded again now) would show them.
    std::vector<uint16_t> fresh(n * k);
    cpu::toBf16(w.f.data(), fresh.data(), n * k, 1);
    for (float &v : w.f)
      v += 1.f;
    const cpu::Bf16Bits copy =
        cpu::bf16Weights(w.f.data(), n * k, ctx.weightsVersion, 1);
    EXPECT_EQ(0, std::memcmp(copy.get(), fresh.data(), fresh.size() * 2))
        << m << " rows, " << threads << " threads";
  }
}

} // namespace
} // namespace galaxy::rt::testing
