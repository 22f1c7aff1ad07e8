// Every forward kernel against a naive loop written here.
#include <cmath>
#include <limits>

#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

std::vector<double> toDouble(const std::vector<float> &v) {
  return {v.begin(), v.end()};
}

TEST(Forward, FillAndIota) {
  Buf y = Buf::zeros({3, 5});
  runOk(Op("fill").f("value", 2.5), {}, {&y});
  for (float v : y.f)
    EXPECT_EQ(v, 2.5f);
  // `value` has no default in the kernel schema (FillOp's ODS).
  absl::Status noValue = run(Op("fill"), {}, {&y});
  EXPECT_EQ(noValue.code(), absl::StatusCode::kInvalidArgument) << noValue;
  EXPECT_NE(noValue.message().find("'value'"), std::string::npos) << noValue;

  Buf ids = Buf::ints({2, 3, 4}, {});
  ASSERT_TRUE(run(Op("iota").i("dim", 1).i("offset", 10), {}, {&ids}).ok());
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(ids.i[(a * 3 + b) * 4 + c], b + 10);
  ASSERT_TRUE(run(Op("iota").i("dim", 2), {}, {&ids}).ok());
  for (int k = 0; k < 24; ++k)
    EXPECT_EQ(ids.i[k], k % 4);
}

TEST(Forward, AddMulScale) {
  std::mt19937 rng(1);
  Buf a = Buf::random({3, 5, 7}, rng), b = Buf::random({3, 5, 7}, rng),
      y = Buf::zeros({3, 5, 7});
  std::vector<double> sum, prod, scaled;
  for (int k = 0; k < a.numel(); ++k) {
    sum.push_back(double(a.f[k] + b.f[k]));
    prod.push_back(double(a.f[k] * b.f[k]));
    scaled.push_back(double(-1.5f * a.f[k]));
  }
  expectClose(runOk(Op("add"), {&a, &b}, {&y}), sum, 0, 0, "add");
  expectClose(runOk(Op("mul"), {&a, &b}, {&y}), prod, 0, 0, "mul");
  expectClose(runOk(Op("scale").f("alpha", -1.5), {&a}, {&y}), scaled, 0, 0,
              "scale");
}

TEST(Forward, Embedding) {
  std::mt19937 rng(2);
  const int v = 5, h = 7;
  Buf table = Buf::random({v, h}, rng);
  Buf ids = Buf::ints(
      {2, 3}, {3, 4, 7, 2, 8, 3}); // vocab_offset 3: rows 0,1,4,-1,5(out),0
  Buf y = Buf::zeros({2, 3, h});
  runOk(Op("embedding").i("vocab_offset", 3), {&table, &ids}, {&y});
  std::vector<double> want;
  for (int32_t id : ids.i)
    for (int j = 0; j < h; ++j)
      want.push_back(id - 3 >= 0 && id - 3 < v ? table.f[(id - 3) * h + j]
                                               : 0.0);
  expectClose(y.f, want, 0, 0, "embedding");
}

// y = x·wᵀ (+b) or x·w (+b), with odd sizes.
TEST(Forward, Linear) {
  std::mt19937 rng(3);
  const int b0 = 3, b1 = 5, k = 7, n = 9;
  for (int tw : {0, 1})
    for (bool bias : {false, true}) {
      Buf x = Buf::random({b0, b1, k}, rng);
      Buf w = tw ? Buf::random({n, k}, rng) : Buf::random({k, n}, rng);
      Buf b = Buf::random({n}, rng), y = Buf::zeros({b0, b1, n});
      std::vector<Buf *> in = {&x, &w};
      if (bias)
        in.push_back(&b);
      runOk(Op("linear").i("transpose_w", tw), in, {&y});
      std::vector<double> want;
      for (int r = 0; r < b0 * b1; ++r)
        for (int j = 0; j < n; ++j) {
          double s = bias ? b.f[j] : 0.0;
          for (int p = 0; p < k; ++p)
            s +=
                double(x.f[r * k + p]) * (tw ? w.f[j * k + p] : w.f[p * n + j]);
          want.push_back(s);
        }
      expectClose(y.f, want, 1e-5, 1e-5, "linear tw=" + std::to_string(tw));
    }
}

TEST(Forward, LinearWeightGradAndBiasGrad) {
  std::mt19937 rng(4);
  const int rows = 15, n = 7, k = 5;
  Buf dy = Buf::random({3, 5, n}, rng), x = Buf::random({3, 5, k}, rng);
  Buf dw = Buf::zeros({n, k}), db = Buf::zeros({n});
  runOk(Op("linear_weight_grad"), {&dy, &x}, {&dw});
  runOk(Op("bias_grad"), {&dy}, {&db});
  std::vector<double> wdw, wdb(n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      double s = 0;
      for (int r = 0; r < rows; ++r)
        s += double(dy.f[r * n + i]) * x.f[r * k + j];
      wdw.push_back(s);
    }
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i)
      wdb[i] += dy.f[r * n + i];
  expectClose(dw.f, wdw, 1e-5, 1e-5, "linear_weight_grad");
  expectClose(db.f, wdb, 1e-5, 1e-5, "bias_grad");
}

// Batched matmul, every transpose combination and alpha, on every GEMM library.
TEST(Forward, MatmulAllTransposes) {
  std::mt19937 rng(5);
  const int bt0 = 2, bt1 = 3, m = 3, k = 5, n = 7;
  for (auto kind : {cpu::GemmKind::kOneDnn, cpu::GemmKind::kOpenBlas,
                    cpu::GemmKind::kNaive, cpu::GemmKind::kOneDnnMatmul})
    for (int ta : {0, 1})
      for (int tb : {0, 1}) {
        Buf a = ta ? Buf::random({bt0, bt1, k, m}, rng)
                   : Buf::random({bt0, bt1, m, k}, rng);
        Buf b = tb ? Buf::random({bt0, bt1, n, k}, rng)
                   : Buf::random({bt0, bt1, k, n}, rng);
        Buf c = Buf::zeros({bt0, bt1, m, n});
        runOk(Op("matmul")
                  .i("transpose_a", ta)
                  .i("transpose_b", tb)
                  .f("alpha", 0.75),
              {&a, &b}, {&c}, {}, &cpuBackend(kind, 2));
        std::vector<double> want;
        for (int bi = 0; bi < bt0 * bt1; ++bi)
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
              double s = 0;
              for (int p = 0; p < k; ++p) {
                const float av = ta ? a.f[bi * k * m + p * m + i]
                                    : a.f[bi * m * k + i * k + p];
                const float bv = tb ? b.f[bi * n * k + j * k + p]
                                    : b.f[bi * k * n + p * n + j];
                s += double(av) * bv;
              }
              want.push_back(0.75 * s);
            }
        expectClose(c.f, want, 1e-5, 1e-5,
                    "matmul " + std::string(cpu::gemmKindName(kind)) + " ta=" +
                        std::to_string(ta) + " tb=" + std::to_string(tb));
      }
}

// Many small matrices (the attention shape) take the one-matrix-per-thread
// path.
// Both sides of the one-thread cut (2^22 multiply-adds): BERT's 48 matrices of
// 32x32x64, and 8 of 64x64x128 that run on all threads.
TEST(Forward, MatmulManySmall) {
  std::mt19937 rng(6);
  for (auto [batch, s, d] : {std::tuple{48, 32, 64}, {8, 64, 128}}) {
    Buf a = Buf::random({batch, s, d}, rng),
        b = Buf::random({batch, s, d}, rng);
    Buf c = Buf::zeros({batch, s, s});
    runOk(Op("matmul").i("transpose_b", 1).f("alpha", 0.125), {&a, &b}, {&c});
    std::vector<double> want;
    for (int bi = 0; bi < batch; ++bi)
      for (int i = 0; i < s; ++i)
        for (int j = 0; j < s; ++j) {
          double sum = 0;
          for (int p = 0; p < d; ++p)
            sum +=
                double(a.f[(bi * s + i) * d + p]) * b.f[(bi * s + j) * d + p];
          want.push_back(0.125 * sum);
        }
    expectClose(c.f, want, 1e-4, 1e-5,
                "batched matmul " + std::to_string(batch));
  }
}

TEST(Forward, SplitAndMergeHeads) {
  std::mt19937 rng(7);
  const int b = 2, s = 3, n = 5, d = 7;
  Buf x = Buf::random({b, s, n * d}, rng), y = Buf::zeros({b, n, s, d}),
      back = Buf::zeros({b, s, n * d});
  runOk(Op("split_heads"), {&x}, {&y});
  std::vector<double> want;
  for (int bi = 0; bi < b; ++bi)
    for (int h = 0; h < n; ++h)
      for (int t = 0; t < s; ++t)
        for (int e = 0; e < d; ++e)
          want.push_back(x.f[(bi * s + t) * n * d + h * d + e]);
  expectClose(y.f, want, 0, 0, "split_heads");
  runOk(Op("merge_heads"), {&y}, {&back});
  expectClose(back.f, toDouble(x.f), 0, 0, "merge_heads(split_heads(x))");
}

// Naive masked softmax over [B,n,Sq,Sk]; mask may be empty.
std::vector<double> naiveSoftmax(const Buf &x, const std::vector<float> &mask,
                                 bool causal, int q_offset) {
  const int64_t b = x.shape[0], n = x.shape[1], sq = x.shape[2],
                sk = x.shape[3];
  std::vector<double> y(x.f.size());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < n; ++h)
      for (int64_t q = 0; q < sq; ++q) {
        const int64_t row = ((bi * n + h) * sq + q) * sk;
        std::vector<double> v(sk);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < sk; ++k) {
          v[k] = x.f[row + k];
          if (!mask.empty())
            v[k] += (1.0 - mask[bi * sk + k]) * -10000.0;
          if (causal && k > q + q_offset)
            v[k] = -std::numeric_limits<double>::infinity();
          mx = std::max(mx, v[k]);
        }
        double sum = 0;
        for (int64_t k = 0; k < sk; ++k)
          sum += std::exp(v[k] - mx);
        for (int64_t k = 0; k < sk; ++k)
          y[row + k] = std::exp(v[k] - mx) / sum;
      }
  return y;
}

TEST(Forward, MaskedSoftmax) {
  std::mt19937 rng(8);
  Buf x = Buf::random({2, 3, 5, 7}, rng, -3, 3), y = Buf::zeros({2, 3, 5, 7});
  Buf mask = Buf::values({2, 7}, {1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0});
  expectClose(runOk(Op("masked_softmax"), {&x}, {&y}),
              naiveSoftmax(x, {}, false, 0), 1e-5, 1e-7, "softmax");
  expectClose(runOk(Op("masked_softmax"), {&x, &mask}, {&y}),
              naiveSoftmax(x, mask.f, false, 0), 1e-5, 1e-7,
              "softmax with mask");
  Buf imask = Buf::ints({2, 7}, {1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0});
  expectClose(runOk(Op("masked_softmax"), {&x, &imask}, {&y}),
              naiveSoftmax(x, mask.f, false, 0), 1e-5, 1e-7,
              "softmax with i32 mask");
  expectClose(runOk(Op("masked_softmax").i("causal", 1), {&x, &mask}, {&y}),
              naiveSoftmax(x, mask.f, true, 0), 1e-5, 1e-7,
              "causal softmax with mask");
  expectClose(
      runOk(Op("masked_softmax").i("causal", 1).i("q_offset", 2), {&x}, {&y}),
      naiveSoftmax(x, {}, true, 2), 1e-5, 1e-7, "causal softmax, q_offset 2");
}

TEST(Forward, LayerNorm) {
  std::mt19937 rng(9);
  const int rows = 15, h = 7;
  Buf x = Buf::random({3, 5, h}, rng, -2, 3), g = Buf::random({h}, rng),
      b = Buf::random({h}, rng);
  Buf y = Buf::zeros({3, 5, h});
  runOk(Op("layer_norm").f("eps", 1e-5), {&x, &g, &b}, {&y});
  std::vector<double> want;
  for (int r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int j = 0; j < h; ++j)
      mu += x.f[r * h + j];
    mu /= h;
    for (int j = 0; j < h; ++j)
      var += (x.f[r * h + j] - mu) * (x.f[r * h + j] - mu);
    var /= h;
    for (int j = 0; j < h; ++j)
      want.push_back((x.f[r * h + j] - mu) / std::sqrt(var + 1e-5) * g.f[j] +
                     b.f[j]);
  }
  expectClose(y.f, want, 1e-5, 1e-5, "layer_norm");
}

TEST(Forward, GeluAndTanh) {
  std::mt19937 rng(10);
  Buf x = Buf::random({3, 5, 7}, rng, -4, 4), y = Buf::zeros({3, 5, 7});
  std::vector<double> exact, approx, th;
  for (float v : x.f) {
    exact.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    approx.push_back(
        0.5 * v *
        (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    th.push_back(std::tanh(double(v)));
  }
  expectClose(runOk(Op("gelu"), {&x}, {&y}), exact, 1e-5, 1e-6, "gelu none");
  expectClose(runOk(Op("gelu").s("approximate", "tanh"), {&x}, {&y}), approx,
              1e-5, 1e-6, "gelu tanh");
  expectClose(runOk(Op("tanh"), {&x}, {&y}), th, 1e-5, 1e-6, "tanh");
}

TEST(Forward, TakeToken) {
  std::mt19937 rng(11);
  Buf x = Buf::random({3, 5, 7}, rng), y = Buf::zeros({3, 7});
  runOk(Op("take_token").i("index", 4), {&x}, {&y});
  std::vector<double> want;
  for (int b = 0; b < 3; ++b)
    for (int j = 0; j < 7; ++j)
      want.push_back(x.f[(b * 5 + 4) * 7 + j]);
  expectClose(y.f, want, 0, 0, "take_token");
}

TEST(Forward, CrossEntropy) {
  std::mt19937 rng(12);
  Buf logits = Buf::random({3, 5}, rng, -3, 3),
      labels = Buf::ints({3}, {4, 0, 2});
  Buf loss = Buf::zeros({});
  runOk(Op("cross_entropy").f("denominator", 2.0), {&logits, &labels}, {&loss});
  double want = 0;
  for (int b = 0; b < 3; ++b) {
    double s = 0;
    for (int j = 0; j < 5; ++j)
      s += std::exp(double(logits.f[b * 5 + j]));
    want += std::log(s) - logits.f[b * 5 + labels.i[b]];
  }
  expectClose(loss.f, {want / 2.0}, 1e-6, 1e-7, "cross_entropy");
}

// Row kernels split rows over threads; each row is computed the same way on any
// thread count.
TEST(Forward, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(13);
  Buf x = Buf::random({64, 768}, rng), g = Buf::random({768}, rng),
      b = Buf::random({768}, rng);
  Buf dy = Buf::random({64, 768}, rng);
  Backend &one = cpuBackend(cpu::GemmKind::kOneDnn, 1),
          &two = cpuBackend(cpu::GemmKind::kOneDnn, 2);
  for (Op op :
       {Op("layer_norm").f("eps", 1e-12), Op("gelu"), Op("bias_grad")}) {
    const bool ln = op.instr().kernel() == "layer_norm";
    const bool bg = op.instr().kernel() == "bias_grad";
    Buf y1 = Buf::zeros(bg ? std::vector<int64_t>{768} : x.shape), y2 = y1;
    std::vector<Buf *> in =
        ln ? std::vector<Buf *>{&x, &g, &b} : std::vector<Buf *>{&x};
    runOk(op, in, {&y1}, {}, &one);
    runOk(op, in, {&y2}, {}, &two);
    EXPECT_EQ(y1.f, y2.f) << op.instr().kernel();
  }
  Buf dx1 = Buf::zeros(x.shape), dg1 = Buf::zeros({768}),
      db1 = Buf::zeros({768});
  Buf dx2 = dx1, dg2 = dg1, db2 = db1;
  runOk(Op("layer_norm_grad").f("eps", 1e-12), {&x, &g, &dy},
        {&dx1, &dg1, &db1}, {}, &one);
  runOk(Op("layer_norm_grad").f("eps", 1e-12), {&x, &g, &dy},
        {&dx2, &dg2, &db2}, {}, &two);
  EXPECT_EQ(dx1.f, dx2.f);
  EXPECT_EQ(dg1.f, dg2.f);
  EXPECT_EQ(db1.f, db2.f);
}

} // namespace
} // namespace galaxy::rt::testing
