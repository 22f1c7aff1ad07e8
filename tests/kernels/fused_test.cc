// galaxy-fuse's kernels against the pairs they replace: bit for bit, on one
// and two threads, whole and as a shard of a larger global shape.
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

// Whole tensors (no addressing attributes) and a shard [2, 5, 24] at offset
// {1, 3, 0} of a global [4, 9, 24].
struct Addressing {
  std::vector<int64_t> shape, global, offset;
};
const Addressing kCases[] = {{{3, 7, 40}, {}, {}},
                             {{2, 5, 24}, {4, 9, 24}, {1, 3, 0}},
                             // Rows of 131: blocks of four straddle rows.
                             {{64, 131}, {}, {}},
                             // Big enough for two threads (dropout and sums).
                             {{1030, 1026}, {}, {}}};

Op dropoutOp(const std::string &kernel, const Addressing &a) {
  Op op(kernel);
  op.f("p", 0.1).i("op_id", 17);
  if (!a.global.empty())
    op.ints("global_shape", a.global).ints("offset", a.offset);
  return op;
}

Backend &backendWith(int threads) {
  return cpuBackend(cpu::GemmKind::kOneDnn, threads);
}

TEST(Fused, DropoutAddIsTheAddOfTheDropout) {
  std::mt19937 rng(3);
  for (bool training : {true, false})
    for (int threads : {1, 2})
      for (const Addressing &a : kCases) {
        const KernelContext ctx{.seed = 99, .step = 5, .training = training};
        Backend *b = &backendWith(threads);
        Buf x = Buf::random(a.shape, rng), r = Buf::random(a.shape, rng);
        Buf d = Buf::zeros(a.shape), sum = Buf::zeros(a.shape),
            fused = Buf::zeros(a.shape);
        runOk(dropoutOp("dropout", a), {&x}, {&d}, ctx, b);
        runOk(Op("add"), {&d, &r}, {&sum}, ctx, b);
        runOk(dropoutOp("dropout_add", a), {&x, &r}, {&fused}, ctx, b);
        ASSERT_EQ(fused.f, sum.f)
            << "training " << training << ", threads " << threads
            << ", shape rank " << a.shape.size();
      }
}

TEST(Fused, DropoutAddWithTheResidualInTheOutputBuffer) {
  std::mt19937 rng(4);
  const Addressing &a = kCases[0];
  const KernelContext ctx{.seed = 1, .step = 2, .training = true};
  Buf x = Buf::random(a.shape, rng), r = Buf::random(a.shape, rng);
  Buf d = Buf::zeros(a.shape), sum = Buf::zeros(a.shape);
  runOk(dropoutOp("dropout", a), {&x}, {&d}, ctx);
  runOk(Op("add"), {&d, &r}, {&sum}, ctx);
  // In place: the plan may give the output the residual's buffer.
  std::vector<Tensor> in = {x.t(), r.t()}, out = {r.t()};
  plan::Instr instr = dropoutOp("dropout_add", a).instr();
  ASSERT_TRUE(cpuBackend().run(instr, in, out, ctx).ok());
  EXPECT_EQ(r.f, sum.f);
}

TEST(Fused, DropoutBiasGradIsTheDropoutAndItsColumnSums) {
  std::mt19937 rng(5);
  for (bool training : {true, false})
    for (int threads : {1, 2})
      for (const Addressing &a : kCases) {
        const KernelContext ctx{.seed = 7, .step = 11, .training = training};
        Backend *b = &backendWith(threads);
        const std::vector<int64_t> bias = {a.shape.back()};
        Buf dy = Buf::random(a.shape, rng);
        Buf d = Buf::zeros(a.shape), db = Buf::zeros(bias);
        Buf fd = Buf::zeros(a.shape), fdb = Buf::zeros(bias);
        runOk(dropoutOp("dropout", a), {&dy}, {&d}, ctx, b);
        runOk(Op("bias_grad"), {&d}, {&db}, ctx, b);
        runOk(dropoutOp("dropout_bias_grad", a), {&dy}, {&fd, &fdb}, ctx, b);
        ASSERT_EQ(fd.f, d.f) << "threads " << threads;
        ASSERT_EQ(fdb.f, db.f) << "threads " << threads;
      }
}

TEST(Fused, GeluGradBiasGradIsTheGeluGradAndItsColumnSums) {
  std::mt19937 rng(8);
  for (const char *approx : {"none", "tanh"})
    for (int threads : {1, 2})
      for (std::vector<int64_t> shape :
           {std::vector<int64_t>{3, 7, 40}, std::vector<int64_t>{1030, 1026}}) {
        Backend *b = &backendWith(threads);
        const std::vector<int64_t> bias = {shape.back()};
        Buf x = Buf::random(shape, rng, -3.f, 3.f),
            dy = Buf::random(shape, rng);
        Buf dx = Buf::zeros(shape), db = Buf::zeros(bias);
        Buf fdx = Buf::zeros(shape), fdb = Buf::zeros(bias);
        runOk(Op("gelu_grad").s("approximate", approx), {&x, &dy}, {&dx}, {},
              b);
        runOk(Op("bias_grad"), {&dx}, {&db}, {}, b);
        runOk(Op("gelu_grad_bias_grad").s("approximate", approx), {&x, &dy},
              {&fdx, &fdb}, {}, b);
        ASSERT_EQ(fdx.f, dx.f) << approx << ", threads " << threads;
        ASSERT_EQ(fdb.f, db.f) << approx << ", threads " << threads;
      }
}

TEST(Fused, MergeHeadsBiasGradIsTheMergeAndItsColumnSums) {
  std::mt19937 rng(7);
  // The second is big enough for two threads.
  for (std::vector<int64_t> heads :
       {std::vector<int64_t>{2, 3, 5, 4}, std::vector<int64_t>{8, 16, 128, 64}})
    for (int threads : {1, 2}) {
      Backend *b = &backendWith(threads);
      const std::vector<int64_t> flat = {heads[0], heads[2],
                                         heads[1] * heads[3]};
      Buf dh = Buf::random(heads, rng);
      Buf m = Buf::zeros(flat), db = Buf::zeros({flat[2]});
      Buf fm = Buf::zeros(flat), fdb = Buf::zeros({flat[2]});
      runOk(Op("merge_heads"), {&dh}, {&m}, {}, b);
      runOk(Op("bias_grad"), {&m}, {&db}, {}, b);
      runOk(Op("merge_heads_bias_grad"), {&dh}, {&fm, &fdb}, {}, b);
      ASSERT_EQ(fm.f, m.f) << "threads " << threads;
      ASSERT_EQ(fdb.f, db.f) << "threads " << threads;
    }
}

TEST(Fused, DropoutBiasGradRejectsAWrongBiasShape) {
  std::mt19937 rng(6);
  Buf dy = Buf::random({4, 8}, rng), d = Buf::zeros({4, 8}),
      db = Buf::zeros({4});
  EXPECT_FALSE(run(dropoutOp("dropout_bias_grad", kCases[0]), {&dy}, {&d, &db},
                   {.training = true})
                   .ok());
  Buf dh = Buf::random({2, 3, 5, 4}, rng), m = Buf::zeros({2, 5, 12}),
      wrong = Buf::zeros({4});
  EXPECT_FALSE(run(Op("merge_heads_bias_grad"), {&dh}, {&m, &wrong}).ok());
}

} // namespace
} // namespace galaxy::rt::testing
