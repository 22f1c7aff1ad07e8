// sgd_update and adamw_update against values worked out by hand (two steps
// each).
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

TEST(Optimizer, SgdTwoSteps) {
  Buf p = Buf::values({2}, {1.f, -2.f});
  Buf g1 = Buf::values({2}, {0.5f, 0.25f}),
      g2 = Buf::values({2}, {-1.f, 0.75f});
  const Op op = Op("sgd_update").f("lr", 0.1).f("weight_decay", 0.01);
  // p -= 0.1·(g + 0.01·p): 1 − 0.1·0.51 = 0.949; −2 − 0.1·(0.25 − 0.02) =
  // −2.023
  runOk(op, {&p, &g1}, {});
  expectClose(p.f, {0.949, -2.023}, 1e-6, 0, "sgd step 1");
  // 0.949 − 0.1·(−1 + 0.00949) = 1.048051; −2.023 − 0.1·(0.75 − 0.02023) =
  // −2.095977
  runOk(op, {&p, &g2}, {});
  expectClose(p.f, {1.048051, -2.095977}, 1e-6, 0, "sgd step 2");
  // weight_decay defaults to 0.
  Buf q = Buf::values({1}, {3.f}), gq = Buf::values({1}, {2.f});
  runOk(Op("sgd_update").f("lr", 0.5), {&q, &gq}, {});
  EXPECT_FLOAT_EQ(q.f[0], 2.f);
}

TEST(Optimizer, AdamwTwoSteps) {
  Buf p = Buf::values({2}, {1.f, -2.f}), m = Buf::zeros({2}),
      v = Buf::zeros({2});
  Buf g1 = Buf::values({2}, {0.5f, 0.25f}),
      g2 = Buf::values({2}, {-1.f, 0.75f});
  const Op op = Op("adamw_update")
                    .f("lr", 0.1)
                    .f("beta1", 0.9)
                    .f("beta2", 0.999)
                    .f("eps", 1e-8)
                    .f("weight_decay", 0.01);
  // Step 1: bias correction makes m̂ = g, v̂ = g², so p = p·(1 − 0.001) −
  // 0.1·g/(|g| + 1e-8).
  runOk(op, {&p, &g1, &m, &v}, {}, {.seed = 0, .step = 1});
  expectClose(
      p.f,
      {0.999 - 0.1 * 0.5 / (0.5 + 1e-8), -1.998 - 0.1 * 0.25 / (0.25 + 1e-8)},
      1e-6, 0, "adamw p1");
  expectClose(m.f, {0.05, 0.025}, 1e-6, 0, "adamw m1");
  expectClose(v.f, {0.00025, 0.0000625}, 1e-6, 0, "adamw v1");
  // Step 2: m = 0.9m + 0.1g = (−0.055, 0.0975); v = 0.999v + 0.001g² =
  // (0.00124975, 0.0006249375); p = p·0.999 − 0.1·(m/0.19)/(sqrt(v/0.001999) +
  // 1e-8).
  runOk(op, {&p, &g2, &m, &v}, {}, {.seed = 0, .step = 2});
  expectClose(m.f, {-0.055, 0.0975}, 1e-6, 0, "adamw m2");
  expectClose(v.f, {0.00124975, 0.0006249375}, 1e-6, 0, "adamw v2");
  expectClose(p.f, {0.9347113542385653, -2.1876801062605815}, 1e-6, 0,
              "adamw p2");
}

// The lowering fuses sgd_update into the kernel computing its gradient
// (alpha = -lr, beta = 1 - lr·wd, output = the parameter): the result must be
// the two-step one.
TEST(Optimizer, SgdFusedIntoLinearWeightGrad) {
  std::mt19937 rng(3);
  Buf dy = Buf::random({2, 3, 4}, rng), x = Buf::random({2, 3, 5}, rng);
  Buf p = Buf::random({4, 5}, rng), dw = Buf::zeros({4, 5});
  Buf fused = p;
  const double lr = 0.1, wd = 0.01;
  runOk(Op("linear_weight_grad"), {&dy, &x}, {&dw});
  runOk(Op("sgd_update").f("lr", lr).f("weight_decay", wd), {&p, &dw}, {});
  runOk(Op("linear_weight_grad").f("alpha", -lr).f("beta", 1 - lr * wd),
        {&dy, &x}, {&fused});
  std::vector<double> want(p.f.begin(), p.f.end());
  expectClose(fused.f, want, 1e-6, 1e-6, "fused linear_weight_grad + sgd");
}

TEST(Optimizer, SgdFusedIntoEmbeddingGradTouchesBatchRowsOnly) {
  std::mt19937 rng(4);
  // Ids 1 and 3 repeat, 0 is padding_idx, row 2 is not in the batch.
  Buf ids = Buf::ints({2, 3}, {1, 3, 0, 3, 1, 1});
  Buf dy = Buf::random({2, 3, 4}, rng), table = Buf::random({5, 4}, rng);
  Buf dt = Buf::zeros({5, 4}), fused = table;
  const Op grad = Op("embedding_grad").i("padding_idx", 0);
  runOk(grad, {&ids, &dy}, {&dt});
  runOk(Op("sgd_update").f("lr", 0.5), {&table, &dt}, {});
  runOk(
      Op("embedding_grad").i("padding_idx", 0).f("alpha", -0.5).f("beta", 1.0),
      {&ids, &dy}, {&fused});
  std::vector<double> want(table.f.begin(), table.f.end());
  expectClose(fused.f, want, 1e-6, 1e-6, "fused embedding_grad + sgd");
  // beta 0.5 scales every row, alpha adds the scatter.
  Buf half = Buf::values({5, 4}, std::vector<float>(20, 2.f));
  runOk(Op("embedding_grad").f("alpha", 0.0).f("beta", 0.5), {&ids, &dy},
        {&half});
  expectClose(half.f, std::vector<double>(20, 1.0), 0, 0, "beta scales");
}

TEST(Optimizer, AdamwNeedsAOneBasedStep) {
  Buf p = Buf::zeros({2}), g = Buf::zeros({2}), m = Buf::zeros({2}),
      v = Buf::zeros({2});
  const Op op = Op("adamw_update")
                    .f("lr", 0.1)
                    .f("beta1", 0.9)
                    .f("beta2", 0.999)
                    .f("eps", 1e-8)
                    .f("weight_decay", 0.0);
  absl::Status st = run(op, {&p, &g, &m, &v}, {}, {.seed = 0, .step = 0});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("step"), std::string::npos) << st;
}

} // namespace
} // namespace galaxy::rt::testing
