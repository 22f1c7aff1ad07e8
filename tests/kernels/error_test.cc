// Bad instructions fail with InvalidArgument naming the kernel and the shapes.
#include "runtime/cpu/kernel_call.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

void expectInvalid(const absl::Status &st,
                   const std::vector<std::string> &fragments) {
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  for (const std::string &f : fragments)
    EXPECT_NE(st.message().find(f), std::string::npos)
        << "'" << f << "' missing in: " << st;
}

TEST(Errors, UnknownKernel) {
  Buf y = Buf::zeros({2});
  expectInvalid(run(Op("convolution"), {}, {&y}),
                {"unknown kernel", "convolution"});
}

TEST(Errors, ShapeMismatch) {
  Buf a = Buf::zeros({2, 3}), b = Buf::zeros({3, 2}), y = Buf::zeros({2, 3});
  expectInvalid(run(Op("add"), {&a, &b}, {&y}), {"'add'", "[2,3]", "[3,2]"});
  Buf x = Buf::zeros({4, 5}), w = Buf::zeros({6, 4}), out = Buf::zeros({4, 6});
  expectInvalid(run(Op("linear"), {&x, &w}, {&out}),
                {"'linear'", "[4,5]", "[6,4]"});
  Buf ma = Buf::zeros({2, 3, 4}), mb = Buf::zeros({3, 4, 5}),
      mc = Buf::zeros({2, 3, 5});
  expectInvalid(run(Op("matmul"), {&ma, &mb}, {&mc}),
                {"'matmul'", "batch", "[3,4,5]"});
  Buf s = Buf::zeros({2, 1, 3, 3}), mask = Buf::zeros({2, 4}),
      sy = Buf::zeros({2, 1, 3, 3});
  expectInvalid(run(Op("masked_softmax"), {&s, &mask}, {&sy}),
                {"'masked_softmax'", "[2,4]"});
}

TEST(Errors, WrongArityDtypeAndAttributes) {
  Buf a = Buf::zeros({2}), y = Buf::zeros({2});
  expectInvalid(run(Op("add"), {&a}, {&y}), {"'add'", "expects 2 inputs"});
  expectInvalid(run(Op("scale"), {&a}, {&y}), {"'scale'", "alpha"});
  expectInvalid(run(Op("scale").s("alpha", "two"), {&a}, {&y}),
                {"alpha", "float"});
  expectInvalid(run(Op("gelu").s("approximate", "erf"), {&a}, {&y}),
                {"approximate='erf'"});
  Buf table = Buf::zeros({4, 2}), fids = Buf::zeros({3}),
      out = Buf::zeros({3, 2});
  expectInvalid(run(Op("embedding"), {&table, &fids}, {&out}),
                {"ids must be i32"});
  Buf logits = Buf::zeros({2, 3}), labels = Buf::ints({2}, {1, 3}),
      loss = Buf::zeros({});
  expectInvalid(
      run(Op("cross_entropy").f("denominator", 2), {&logits, &labels}, {&loss}),
      {"labels[1]=3"});
  Buf x = Buf::zeros({2, 3}), dy = Buf::zeros({2, 3});
  expectInvalid(run(Op("dropout")
                        .f("p", 0.5)
                        .i("op_id", 1)
                        .ints("global_shape", {2, 3})
                        .ints("offset", {1, 0}),
                    {&x}, {&dy}, {.seed = 1, .step = 1}),
                {"offset [1,0]", "global_shape [2,3]"});
}

// The attribute readers follow the kernel schema: defaults from the ODS, and
// a key the schema does not declare for the kernel is an error.
TEST(Errors, AttributeReadersFollowTheSchema) {
  const std::vector<Tensor> none;
  const KernelContext ctx;
  const cpu::CpuEnv env;
  plan::Instr emb = Op("embedding").instr();
  const cpu::KernelCall c{emb, none, none, ctx, env};
  absl::StatusOr<int64_t> pad = cpu::intAttr(c, "padding_idx");
  ASSERT_TRUE(pad.ok()) << pad.status();
  EXPECT_EQ(*pad, -1); // GalaxyOps.td: DefaultValuedAttr<I64Attr, "-1">
  expectInvalid(cpu::intAttr(c, "window").status(),
                {"'embedding'", "'window'", "does not declare"});
  expectInvalid(cpu::floatAttr(c, "padding_idx").status(),
                {"'padding_idx'", "as float", "declares int"});
  plan::Instr bogus = Op("convolution").instr();
  const cpu::KernelCall b{bogus, none, none, ctx, env};
  expectInvalid(cpu::intAttr(b, "k").status(), {"kernel schema"});
}

} // namespace
} // namespace galaxy::rt::testing
