// linear with few rows in inference programs (KernelContext::paramsVersion
// set, the weight a parameter): the GEMV loops of runtime/cpu/gemv.h, fp32 and
// bf16 weights (kept repacked per parameters' version), against an fp64
// reference; the same bits on 1 and 2 threads.
#include <cmath>
#include <random>
#include <vector>

#include "runtime/cpu/gemv.h"
#include "runtime/cpu/vector_loops.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

float bf16(float x) {
  float y;
  cpu::roundToBf16(&x, &y, 1);
  return y;
}

// y = x·wᵀ (+ bias) through the linear kernel, w marked as a parameter.
std::vector<float> linear(Buf &x, Buf &w, Buf *bias, const KernelContext &ctx,
                          Backend &backend) {
  const int64_t m = x.shape[0], n = w.shape[0];
  Buf y = Buf::zeros({m, n});
  std::vector<Tensor> in = {x.t(), w.t()};
  in[1].param = true;
  if (bias)
    in.push_back(bias->t());
  std::vector<Tensor> out = {y.t()};
  Op op("linear");
  op.i("transpose_w", 1);
  absl::Status s = backend.run(op.instr(), in, out, ctx);
  EXPECT_TRUE(s.ok()) << s;
  return y.f;
}

std::vector<double> reference(const Buf &x, const Buf &w, const Buf *bias,
                              bool roundBf16) {
  const int64_t m = x.shape[0], k = x.shape[1], n = w.shape[0];
  std::vector<double> y(m * n);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias ? bias->f[j] : 0.0;
      for (int64_t p = 0; p < k; ++p) {
        float a = x.f[r * k + p], b = w.f[j * k + p];
        if (roundBf16) {
          a = bf16(a);
          b = bf16(b);
        }
        s += double(a) * double(b);
      }
      y[r * n + j] = s;
    }
  return y;
}

TEST(Gemv, Fp32RowsAgainstReference) {
  std::mt19937 rng(3);
  KernelContext ctx{.seed = 1, .step = 1, .training = false};
  ctx.paramsVersion = 5;
  for (int64_t m : {1, 2, 4, 7, 8, 9})
    for (bool withBias : {false, true}) {
      Buf x = Buf::random({m, 100}, rng), w = Buf::random({37, 100}, rng),
          b = Buf::random({37}, rng);
      std::vector<float> got =
          linear(x, w, withBias ? &b : nullptr, ctx, cpuBackend());
      expectClose(got, reference(x, w, withBias ? &b : nullptr, false), 1e-5,
                  1e-5, "fp32 gemv m=" + std::to_string(m));
    }
}

TEST(Gemv, Bf16WeightsKeptPerVersion) {
  std::mt19937 rng(4);
  KernelContext ctx{.seed = 1, .step = 1, .training = false};
  ctx.matmulDType = plan::MATMUL_BF16;
  ctx.paramsVersion = 1000001; // unlike any executor's
  Buf x = Buf::random({3, 70}, rng), w = Buf::random({33, 70}, rng);
  expectClose(linear(x, w, nullptr, ctx, cpuBackend()),
              reference(x, w, nullptr, true), 1e-5, 1e-5, "bf16 gemv");
  // A new version repacks the changed weights; the old one keeps its copy
  // (the executor promises the weights did not change under one version).
  const std::vector<double> before = reference(x, w, nullptr, true);
  for (float &v : w.f)
    v = -v;
  expectClose(linear(x, w, nullptr, ctx, cpuBackend()), before, 1e-5, 1e-5,
              "bf16 gemv, same version");
  ctx.paramsVersion = 1000002;
  expectClose(linear(x, w, nullptr, ctx, cpuBackend()),
              reference(x, w, nullptr, true), 1e-5, 1e-5,
              "bf16 gemv, new version");
}

TEST(Gemv, SameBitsOnOneAndTwoThreads) {
  std::mt19937 rng(5);
  KernelContext ctx{.seed = 1, .step = 1, .training = false};
  ctx.paramsVersion = 9;
  // Big enough to be split over threads (n·k >= 2^20).
  Buf x = Buf::random({4, 1024}, rng), w = Buf::random({1030, 1024}, rng);
  std::vector<float> one =
      linear(x, w, nullptr, ctx, cpuBackend(cpu::GemmKind::kOneDnn, 1));
  std::vector<float> two =
      linear(x, w, nullptr, ctx, cpuBackend(cpu::GemmKind::kOneDnn, 2));
  EXPECT_EQ(one, two);
  expectClose(one, reference(x, w, nullptr, false), 1e-4, 1e-4,
              "fp32 gemv, 2 threads");
}

} // namespace
} // namespace galaxy::rt::testing
