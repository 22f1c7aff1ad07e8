// Every compute kernel of docs/kernels.md on the CUDA backend against the CPU
// backend, on random data (dropout bit for bit: both draw the same Philox
// mask). Skipped, with the reason, where no GPU is present.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/cuda/gpu_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

struct Tolerance {
  double rtol = 1e-4, atol = 1e-5;
};
constexpr Tolerance kExact{0.0, 0.0};

size_t bytesOf(const Buf &b) { return b.numel() * 4; }
void *hostData(Buf &b) {
  return b.dtype == plan::F32 ? static_cast<void *>(b.f.data())
                              : static_cast<void *>(b.i.data());
}

class GpuVsCpu : public ::testing::Test {
protected:
  void SetUp() override { GALAXY_SKIP_WITHOUT_GPU(); }

  // Runs op on both backends from the same inputs and compares every output
  // (and every input, which catches in-place updates and stray writes).
  void same(const Op &op, std::vector<Buf> in, std::vector<Buf> out,
            Tolerance tol = {}, KernelContext ctx = {.seed = 7, .step = 3}) {
    std::vector<Buf> cpuIn = in, cpuOut = out;
    std::vector<Buf *> pi, po;
    for (Buf &b : cpuIn)
      pi.push_back(&b);
    for (Buf &b : cpuOut)
      po.push_back(&b);
    absl::Status cs = run(op, pi, po, ctx, &cpuBackend());
    ASSERT_TRUE(cs.ok()) << "CPU: " << cs;

    DeviceMemory &mem = gpuMemory();
    std::vector<void *> owned;
    auto upload = [&](std::vector<Buf> &bufs) {
      std::vector<Tensor> ts;
      for (Buf &b : bufs) {
        absl::StatusOr<void *> p = mem.allocate(bytesOf(b));
        EXPECT_TRUE(p.ok()) << p.status();
        owned.push_back(*p);
        EXPECT_TRUE(mem.copyToDevice(*p, hostData(b), bytesOf(b)).ok());
        Tensor t = b.t();
        t.data = *p;
        ts.push_back(t);
      }
      return ts;
    };
    // Outputs start as NaN on the GPU so an unwritten element shows.
    for (Buf &b : out)
      if (b.dtype == plan::F32 && poisonOutputs_)
        b.f.assign(b.numel(), std::nanf(""));
    std::vector<Tensor> ti = upload(in), to = upload(out);
    absl::Status gs = gpuBackend().run(op.instr(), ti, to, ctx);
    ASSERT_TRUE(gs.ok()) << "GPU: " << gs;
    auto download = [&](std::vector<Buf> &bufs, std::vector<Tensor> &ts) {
      for (size_t k = 0; k < bufs.size(); ++k) {
        absl::Status s =
            mem.copyToHost(hostData(bufs[k]), ts[k].data, bytesOf(bufs[k]));
        EXPECT_TRUE(s.ok()) << s;
      }
    };
    download(in, ti);
    download(out, to);
    for (void *p : owned)
      mem.release(p);
    lastGpuOut_ = out;
    const std::string k = op.instr().kernel();
    for (size_t j = 0; j < out.size(); ++j)
      compare(out[j], cpuOut[j], tol, k + " output " + std::to_string(j));
    for (size_t j = 0; j < in.size(); ++j)
      compare(in[j], cpuIn[j], tol, k + " input " + std::to_string(j));
  }

  static void compare(const Buf &gpu, const Buf &cpu, Tolerance tol,
                      const std::string &what) {
    if (gpu.dtype == plan::I32) {
      EXPECT_EQ(gpu.i, cpu.i) << what;
      return;
    }
    expectClose(gpu.f, std::vector<double>(cpu.f.begin(), cpu.f.end()),
                tol.rtol, tol.atol, what + " (GPU vs CPU)");
  }

  Buf rnd(std::vector<int64_t> shape, float lo = -1.f, float hi = 1.f) {
    return Buf::random(std::move(shape), rng_, lo, hi);
  }
  Buf ids(std::vector<int64_t> shape, int32_t lo, int32_t hi) {
    Buf b = Buf::ints(std::move(shape), {});
    std::uniform_int_distribution<int32_t> d(lo, hi - 1);
    for (int32_t &x : b.i)
      x = d(rng_);
    return b;
  }

  std::mt19937 rng_{1234};
  bool poisonOutputs_ = true;   // false for outputs a kernel may leave alone
  std::vector<Buf> lastGpuOut_; // the GPU's outputs of the last same()
};

TEST_F(GpuVsCpu, FillAndIota) {
  same(Op("fill").f("value", 2.5), {}, {Buf::zeros({3, 5})});
  same(Op("fill").f("value", 7), {}, {Buf::ints({4, 3}, {})});
  same(Op("iota").i("dim", 1).i("offset", 3), {}, {Buf::ints({2, 5, 3}, {})});
}

TEST_F(GpuVsCpu, ElementwiseMaps) {
  same(Op("add"), {rnd({4, 33}), rnd({4, 33})}, {Buf::zeros({4, 33})});
  same(Op("mul"), {rnd({4, 33}), rnd({4, 33})}, {Buf::zeros({4, 33})});
  same(Op("scale").f("alpha", -0.75), {rnd({1000})}, {Buf::zeros({1000})});
  same(Op("tanh"), {rnd({7, 50}, -4, 4)}, {Buf::zeros({7, 50})});
  same(Op("tanh_grad"), {rnd({7, 50}), rnd({7, 50})}, {Buf::zeros({7, 50})});
  for (const char *act : {"relu", "silu"}) {
    same(Op(act), {rnd({5, 77}, -6, 6)}, {Buf::zeros({5, 77})}, {1e-5, 1e-6});
    same(Op(std::string(act) + "_grad"), {rnd({5, 77}, -6, 6), rnd({5, 77})},
         {Buf::zeros({5, 77})}, {1e-5, 1e-6});
  }
  for (const char *approx : {"none", "tanh"}) {
    same(Op("gelu").s("approximate", approx), {rnd({6, 129}, -5, 5)},
         {Buf::zeros({6, 129})}, {1e-4, 1e-6});
    same(Op("gelu_grad").s("approximate", approx),
         {rnd({6, 129}, -5, 5), rnd({6, 129})}, {Buf::zeros({6, 129})},
         {1e-4, 1e-6});
    // galaxy-fuse's gelu_grad + bias_grad.
    same(Op("gelu_grad_bias_grad").s("approximate", approx),
         {rnd({6, 129}, -5, 5), rnd({6, 129})},
         {Buf::zeros({6, 129}), Buf::zeros({129})}, {1e-4, 1e-5});
  }
}

TEST_F(GpuVsCpu, Linear) {
  for (int tw : {0, 1}) {
    std::vector<int64_t> w =
        tw ? std::vector<int64_t>{24, 40} : std::vector<int64_t>{40, 24};
    same(Op("linear").i("transpose_w", tw), {rnd({3, 5, 40}), rnd(w)},
         {Buf::zeros({3, 5, 24})});
    same(Op("linear").i("transpose_w", tw),
         {rnd({3, 5, 40}), rnd(w), rnd({24})}, {Buf::zeros({3, 5, 24})});
  }
  same(Op("linear_weight_grad"), {rnd({2, 9, 24}), rnd({2, 9, 40})},
       {Buf::zeros({24, 40})});
  same(Op("bias_grad"), {rnd({300, 37})}, {Buf::zeros({37})});
}

TEST_F(GpuVsCpu, Matmul) {
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      const int64_t m = 7, k = 11, n = 5;
      std::vector<int64_t> a = ta ? std::vector<int64_t>{2, 3, k, m}
                                  : std::vector<int64_t>{2, 3, m, k};
      std::vector<int64_t> b = tb ? std::vector<int64_t>{2, 3, n, k}
                                  : std::vector<int64_t>{2, 3, k, n};
      same(Op("matmul")
               .i("transpose_a", ta)
               .i("transpose_b", tb)
               .f("alpha", 0.125),
           {rnd(a), rnd(b)}, {Buf::zeros({2, 3, m, n})});
    }
  same(Op("matmul"), {rnd({16, 32}), rnd({32, 8})}, {Buf::zeros({16, 8})});
}

// bf16 plans (docs/kernels.md "Matmul precision"): both backends round the
// operands with the same bits and sum exact products in fp32, so they agree
// to fp32 summation order; and the GPU's result is visibly not the fp32 one
// (bf16 rounding moves these products by ~1e-3), so a GPU GEMM that ignored
// the context's matmulDType fails.
TEST_F(GpuVsCpu, Bf16GemmsMatchTheCpuBf16Kernels) {
  const KernelContext bf16{
      .seed = 7, .step = 3, .matmulDType = plan::MATMUL_BF16};
  auto visiblyNotFp32 = [&](const Op &op, std::vector<Buf> in, Buf out,
                            const std::string &what) {
    std::vector<Buf *> pi;
    for (Buf &b : in)
      pi.push_back(&b);
    std::vector<float> fp32 = runOk(op, pi, {&out}, {}, &cpuBackend());
    ASSERT_EQ(lastGpuOut_.size(), 1u) << what;
    double d = 0;
    for (size_t i = 0; i < fp32.size(); ++i)
      d = std::max(d, double(std::fabs(lastGpuOut_[0].f[i] - fp32[i])));
    EXPECT_GT(d, 1e-3) << what << ": the GPU ran the bf16 GEMM in fp32?";
  };
  for (int tw : {0, 1}) {
    std::vector<int64_t> w =
        tw ? std::vector<int64_t>{24, 64} : std::vector<int64_t>{64, 24};
    const Op op = Op("linear").i("transpose_w", tw);
    std::vector<Buf> in = {rnd({3, 5, 64}), rnd(w), rnd({24})};
    same(op, in, {Buf::zeros({3, 5, 24})}, {}, bf16);
    visiblyNotFp32(op, in, Buf::zeros({3, 5, 24}), "linear");
  }
  // Fused SGD: the parameter (C, read under beta, so not poisoned) stays fp32.
  const Op sgd = Op("linear_weight_grad").f("alpha", -1e-3).f("beta", 0.999);
  poisonOutputs_ = false;
  same(sgd, {rnd({2, 9, 24}), rnd({2, 9, 40})}, {rnd({24, 40})}, {}, bf16);
  poisonOutputs_ = true;
  const Op grad = Op("linear_weight_grad");
  std::vector<Buf> gin = {rnd({4, 16, 24}), rnd({4, 16, 40})};
  same(grad, gin, {Buf::zeros({24, 40})}, {}, bf16);
  visiblyNotFp32(grad, gin, Buf::zeros({24, 40}), "linear_weight_grad");
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      const int64_t m = 7, k = 48, n = 5;
      const Op op = Op("matmul")
                        .i("transpose_a", ta)
                        .i("transpose_b", tb)
                        .f("alpha", 0.5);
      std::vector<Buf> in = {rnd(ta ? std::vector<int64_t>{2, 3, k, m}
                                    : std::vector<int64_t>{2, 3, m, k}),
                             rnd(tb ? std::vector<int64_t>{2, 3, n, k}
                                    : std::vector<int64_t>{2, 3, k, n})};
      same(op, in, {Buf::zeros({2, 3, m, n})}, {}, bf16);
      visiblyNotFp32(op, in, Buf::zeros({2, 3, m, n}), "batched matmul");
    }
}

TEST_F(GpuVsCpu, HeadsAndSoftmax) {
  same(Op("split_heads"), {rnd({2, 5, 12})}, {Buf::zeros({2, 3, 5, 4})},
       kExact);
  same(Op("merge_heads"), {rnd({2, 3, 5, 4})}, {Buf::zeros({2, 5, 12})},
       kExact);
  // galaxy-fuse's merge and bias gradient: the copy exact, the sums within
  // bias_grad's tolerance (the GPU adds its chunks in another order).
  same(Op("merge_heads_bias_grad"), {rnd({4, 3, 50, 4})},
       {Buf::zeros({4, 50, 12}), Buf::zeros({12})});
  Buf maskF = Buf::values({2, 6}, {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0});
  Buf maskI = Buf::ints({2, 6}, {1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1});
  same(Op("masked_softmax"), {rnd({2, 3, 4, 6}, -3, 3)},
       {Buf::zeros({2, 3, 4, 6})});
  same(Op("masked_softmax"), {rnd({2, 3, 4, 6}, -3, 3), maskF},
       {Buf::zeros({2, 3, 4, 6})});
  same(Op("masked_softmax"), {rnd({2, 3, 4, 6}, -3, 3), maskI},
       {Buf::zeros({2, 3, 4, 6})});
  same(Op("masked_softmax").i("causal", 1).i("q_offset", 1),
       {rnd({2, 3, 4, 6}, -3, 3), maskF}, {Buf::zeros({2, 3, 4, 6})});
  same(Op("masked_softmax").i("causal", 1).i("q_offset", -2),
       {rnd({2, 3, 4, 70}, -3, 3)}, {Buf::zeros({2, 3, 4, 70})});
  same(Op("softmax_grad"), {rnd({2, 3, 4, 6}, 0, 1), rnd({2, 3, 4, 6})},
       {Buf::zeros({2, 3, 4, 6})});
}

// rope's angles come from one header (runtime/cpu/rope_angles.h) on both
// backends, rounded once from double: the same bits (a long sequence's
// positions, where an angle's last bit shows). repeat_kv copies and sums in
// the same order.
TEST_F(GpuVsCpu, RopeAndRepeatKv) {
  same(Op("rope").f("theta", 1e4).i("offset", 4090),
       {rnd({2, 3, 6, 128}, -2, 2)}, {Buf::zeros({2, 3, 6, 128})}, kExact);
  same(Op("rope").f("theta", 5e5).i("inverse", 1), {rnd({1, 2, 5, 64})},
       {Buf::zeros({1, 2, 5, 64})}, kExact);
  same(Op("repeat_kv").i("groups", 4), {rnd({2, 2, 5, 8})},
       {Buf::zeros({2, 8, 5, 8})}, kExact);
  same(Op("repeat_kv").i("groups", 2).i("head_offset", 3), {rnd({2, 2, 5, 8})},
       {Buf::zeros({2, 1, 5, 8})}, kExact);
  same(Op("repeat_kv_grad").i("groups", 4), {rnd({2, 8, 5, 8})},
       {Buf::zeros({2, 2, 5, 8})}, kExact);
  same(Op("repeat_kv_grad").i("groups", 2).i("head_offset", 1),
       {rnd({2, 3, 5, 8})}, {Buf::zeros({2, 2, 5, 8})}, kExact);
}

TEST_F(GpuVsCpu, LayerNorm) {
  same(Op("layer_norm").f("eps", 1e-12),
       {rnd({3, 7, 96}, -2, 5), rnd({96}), rnd({96})}, {Buf::zeros({3, 7, 96})},
       {1e-4, 1e-5});
  same(Op("layer_norm_grad").f("eps", 1e-5),
       {rnd({130, 64}, -2, 5), rnd({64}), rnd({130, 64})},
       {Buf::zeros({130, 64}), Buf::zeros({64}), Buf::zeros({64})},
       {1e-4, 1e-4});
  // Frozen gamma/beta: only dx is written (dgamma, dbeta keep their zeros).
  poisonOutputs_ = false;
  same(Op("layer_norm_grad").f("eps", 1e-5).i("param_grads", 0),
       {rnd({9, 32}), rnd({32}), rnd({9, 32})},
       {Buf::zeros({9, 32}), Buf::zeros({32}), Buf::zeros({32})}, {1e-4, 1e-4});
}

TEST_F(GpuVsCpu, DropoutDrawsTheCpuMask) {
  // Whole tensor, then a shard of a larger global tensor with offsets that
  // do not start on a Philox block (g & 3 != 0).
  same(Op("dropout").f("p", 0.3).i("op_id", 5), {rnd({4, 7, 9})},
       {Buf::zeros({4, 7, 9})}, kExact);
  same(Op("dropout")
           .f("p", 0.1)
           .i("op_id", 11)
           .ints("global_shape", {6, 8, 13})
           .ints("offset", {2, 3, 5}),
       {rnd({3, 4, 7})}, {Buf::zeros({3, 4, 7})}, kExact);
  same(Op("dropout").f("p", 0.5).i("op_id", 2), {rnd({50})}, {Buf::zeros({50})},
       kExact, {.seed = 0x123456789abcULL, .step = 9});
  same(Op("dropout").f("p", 0.5).i("op_id", 2), {rnd({50})}, {Buf::zeros({50})},
       kExact, {.seed = 1, .step = 1, .training = false});
  // galaxy-fuse's forms: the mask and the residual sum bit for bit, the bias
  // gradient's column sums within bias_grad's tolerance.
  same(Op("dropout_add")
           .f("p", 0.1)
           .i("op_id", 11)
           .ints("global_shape", {6, 8, 13})
           .ints("offset", {2, 3, 5}),
       {rnd({3, 4, 7}), rnd({3, 4, 7})}, {Buf::zeros({3, 4, 7})}, kExact);
  same(Op("dropout_add").f("p", 0.5).i("op_id", 2), {rnd({50}), rnd({50})},
       {Buf::zeros({50})}, kExact, {.seed = 1, .step = 1, .training = false});
  same(Op("dropout_bias_grad").f("p", 0.3).i("op_id", 5), {rnd({300, 37})},
       {Buf::zeros({300, 37}), Buf::zeros({37})});
}

TEST_F(GpuVsCpu, EmbeddingAndTokens) {
  // Ids outside [vocab_offset, vocab_offset + V) give zero rows.
  same(Op("embedding").i("vocab_offset", 10),
       {rnd({20, 16}), ids({3, 9}, 0, 40)}, {Buf::zeros({3, 9, 16})}, kExact);
  // Repeated ids accumulate; padding_idx rows get no gradient.
  same(Op("embedding_grad").i("vocab_offset", 4).i("padding_idx", 6),
       {ids({5, 40}, 0, 16), rnd({5, 40, 24})}, {Buf::zeros({10, 24})});
  same(Op("take_token").i("index", 2), {rnd({3, 5, 8})}, {Buf::zeros({3, 8})},
       kExact);
  same(Op("take_token_grad").i("index", 4), {rnd({3, 8})},
       {Buf::zeros({3, 5, 8})}, kExact);
}

TEST_F(GpuVsCpu, CrossEntropy) {
  Buf labels = ids({12}, 0, 9);
  same(Op("cross_entropy").f("denominator", 12), {rnd({12, 9}, -4, 4), labels},
       {Buf::zeros({})}, {1e-5, 1e-6});
  same(Op("cross_entropy_grad").f("denominator", 12),
       {rnd({12, 9}, -4, 4), labels, Buf::values({}, {0.5f})},
       {Buf::zeros({12, 9})}, {1e-5, 1e-7});
  // A large class count (MLM-sized rows).
  same(Op("cross_entropy").f("denominator", 4),
       {rnd({4, 3000}, -4, 4), ids({4}, 0, 3000)}, {Buf::zeros({})},
       {1e-5, 1e-6});
  // Token-level [B,S,V] with ignored positions (HF's -100, and another
  // ignore_index): no loss, zero gradient rows.
  Buf tok = Buf::ints({2, 3}, {1, -100, 4, -100, 0, 2});
  same(Op("cross_entropy").f("denominator", 4), {rnd({2, 3, 7}, -4, 4), tok},
       {Buf::zeros({})}, {1e-5, 1e-6});
  same(Op("cross_entropy_grad").f("denominator", 4),
       {rnd({2, 3, 7}, -4, 4), tok, Buf::values({}, {0.5f})},
       {Buf::zeros({2, 3, 7})}, {1e-5, 1e-7});
  Buf pad = Buf::ints({2, 3}, {1, 6, 4, 6, 0, 2});
  same(Op("cross_entropy_grad").f("denominator", 4).i("ignore_index", 6),
       {rnd({2, 3, 7}, -4, 4), pad, Buf::values({}, {0.5f})},
       {Buf::zeros({2, 3, 7})}, {1e-5, 1e-7});
}

TEST_F(GpuVsCpu, OptimizerUpdates) {
  same(Op("sgd_update").f("lr", 0.1).f("weight_decay", 0.01),
       {rnd({1000}), rnd({1000})}, {});
  same(Op("adamw_update")
           .f("lr", 1e-3)
           .f("beta1", 0.9)
           .f("beta2", 0.999)
           .f("eps", 1e-8)
           .f("weight_decay", 0.01),
       {rnd({777}), rnd({777}), rnd({777}, -0.1, 0.1), rnd({777}, 0, 0.01)}, {},
       {1e-5, 1e-6});
}

TEST_F(GpuVsCpu, ErrorsNameTheKernel) {
  Op bad("cross_entropy");
  bad.f("denominator", 2);
  Buf logits = rnd({2, 3});
  Buf labels = Buf::ints({2}, {1, 3}); // 3 is outside [0, 3)
  Buf loss = Buf::zeros({});
  DeviceMemory &mem = gpuMemory();
  std::vector<void *> dev;
  std::vector<Tensor> ts;
  for (Buf *b : {&logits, &labels, &loss}) {
    void *p = *mem.allocate(bytesOf(*b));
    ASSERT_TRUE(mem.copyToDevice(p, hostData(*b), bytesOf(*b)).ok());
    Tensor t = b->t();
    t.data = p;
    ts.push_back(t);
    dev.push_back(p);
  }
  absl::Status s = gpuBackend().run(bad.instr(), {ts[0], ts[1]}, {ts[2]}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("labels[1]=3 outside [0,3)"), std::string::npos)
      << s;
  absl::Status u = gpuBackend().run(Op("no_such_kernel").instr(), {}, {}, {});
  EXPECT_NE(u.message().find("unknown kernel 'no_such_kernel'"),
            std::string::npos)
      << u;
  for (void *p : dev)
    mem.release(p);
}

} // namespace
} // namespace galaxy::rt::testing
