// Bad instructions fail with InvalidArgument naming the kernel and the shapes.
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

} // namespace
} // namespace galaxy::rt::testing
