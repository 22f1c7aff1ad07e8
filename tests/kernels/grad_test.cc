// Finite-difference checks: every *_grad rule against its forward kernel. The
// forward runs in f32 through the kernels; L = Σ w·y is summed in double and
// differenced centrally.
#include <cmath>
#include <functional>

#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

constexpr double kStep = 5e-3;

// dL/dx by central differences, L = Σ w·forward().
std::vector<double>
numericGrad(Buf &x, const std::function<std::vector<float>()> &forward,
            const std::vector<float> &w) {
  auto loss = [&] {
    std::vector<float> y = forward();
    EXPECT_EQ(y.size(), w.size());
    double s = 0;
    for (size_t k = 0; k < y.size(); ++k)
      s += double(w[k]) * y[k];
    return s;
  };
  std::vector<double> g(x.f.size());
  for (size_t k = 0; k < x.f.size(); ++k) {
    const float orig = x.f[k];
    x.f[k] = orig + float(kStep);
    const double up = loss();
    x.f[k] = orig - float(kStep);
    const double down = loss();
    x.f[k] = orig;
    g[k] = (up - down) / (2 * kStep);
  }
  return g;
}

// ~1e-2 relative, with an absolute floor scaled to the gradient's size.
void expectGrad(const std::vector<float> &analytic,
                const std::vector<double> &numeric, const std::string &what) {
  double mx = 0;
  for (double v : numeric)
    mx = std::max(mx, std::fabs(v));
  expectClose(analytic, numeric, 1e-2, 1e-2 * mx + 1e-4, what);
}

TEST(Grad, Linear) {
  std::mt19937 rng(30);
  const int k = 5, n = 4;
  Buf x = Buf::random({2, 3, k}, rng), w = Buf::random({n, k}, rng),
      b = Buf::random({n}, rng);
  Buf y = Buf::zeros({2, 3, n}), dy = Buf::random({2, 3, n}, rng);
  auto fwd = [&] { return runOk(Op("linear"), {&x, &w, &b}, {&y}); };
  Buf dx = Buf::zeros(x.shape), dw = Buf::zeros(w.shape),
      db = Buf::zeros(b.shape);
  runOk(Op("linear").i("transpose_w", 0), {&dy, &w}, {&dx}); // dx = dy·w
  runOk(Op("linear_weight_grad"), {&dy, &x}, {&dw});
  runOk(Op("bias_grad"), {&dy}, {&db});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "linear dx");
  expectGrad(dw.f, numericGrad(w, fwd, dy.f), "linear dw");
  expectGrad(db.f, numericGrad(b, fwd, dy.f), "linear db");
}

// transpose_w=0 (w is [K,N]): dx = linear(dy, w) with transpose_w=1, dw =
// linear_weight_grad(x, dy).
TEST(Grad, LinearUntransposed) {
  std::mt19937 rng(31);
  const int k = 3, n = 5;
  Buf x = Buf::random({7, k}, rng), w = Buf::random({k, n}, rng);
  Buf y = Buf::zeros({7, n}), dy = Buf::random({7, n}, rng);
  auto fwd = [&] {
    return runOk(Op("linear").i("transpose_w", 0), {&x, &w}, {&y});
  };
  Buf dx = Buf::zeros(x.shape), dw = Buf::zeros(w.shape);
  runOk(Op("linear"), {&dy, &w}, {&dx});
  runOk(Op("linear_weight_grad"), {&x, &dy}, {&dw});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "linear(tw=0) dx");
  expectGrad(dw.f, numericGrad(w, fwd, dy.f), "linear(tw=0) dw");
}

// c = alpha·op(a)·op(b); the gradients are matmuls with transposes.
TEST(Grad, MatmulAllTransposes) {
  std::mt19937 rng(32);
  const int m = 3, k = 4, n = 5;
  const double alpha = 0.5;
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      Buf a = ta ? Buf::random({2, k, m}, rng) : Buf::random({2, m, k}, rng);
      Buf b = tb ? Buf::random({2, n, k}, rng) : Buf::random({2, k, n}, rng);
      Buf c = Buf::zeros({2, m, n}), dc = Buf::random({2, m, n}, rng);
      auto mm = [&](int t1, int t2) {
        return Op("matmul")
            .i("transpose_a", t1)
            .i("transpose_b", t2)
            .f("alpha", alpha);
      };
      auto fwd = [&] { return runOk(mm(ta, tb), {&a, &b}, {&c}); };
      Buf da = Buf::zeros(a.shape), db = Buf::zeros(b.shape);
      // da = alpha·dc·op(b)ᵀ (ta=0) or alpha·op(b)·dcᵀ (ta=1)
      if (!ta)
        runOk(mm(0, !tb), {&dc, &b}, {&da});
      else
        runOk(mm(tb, 1), {&b, &dc}, {&da});
      // db = alpha·op(a)ᵀ·dc (tb=0) or alpha·dcᵀ·op(a) (tb=1)
      if (!tb)
        runOk(mm(!ta, 0), {&a, &dc}, {&db});
      else
        runOk(mm(1, ta), {&dc, &a}, {&db});
      const std::string what =
          "matmul ta=" + std::to_string(ta) + " tb=" + std::to_string(tb);
      expectGrad(da.f, numericGrad(a, fwd, dc.f), what + " da");
      expectGrad(db.f, numericGrad(b, fwd, dc.f), what + " db");
    }
}

void softmaxGradCase(const Op &op, bool with_mask,
                     const std::vector<int64_t> &shape) {
  std::mt19937 rng(33);
  Buf x = Buf::random(shape, rng, -2, 2), y = Buf::zeros(shape),
      dy = Buf::random(shape, rng);
  Buf mask = Buf::zeros({shape[0], shape[3]});
  for (size_t k = 0; k < mask.f.size(); ++k)
    mask.f[k] = k % 3 == 1 ? 0.f : 1.f;
  std::vector<Buf *> in = {&x};
  if (with_mask)
    in.push_back(&mask);
  auto fwd = [&] { return runOk(op, in, {&y}); };
  fwd();
  Buf dx = Buf::zeros(shape);
  runOk(Op("softmax_grad"), {&y, &dy}, {&dx});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f),
             op.instr().kernel() + (with_mask ? " masked" : ""));
}

TEST(Grad, MaskedSoftmax) {
  softmaxGradCase(Op("masked_softmax"), true, {2, 2, 3, 5});
  softmaxGradCase(Op("masked_softmax").i("causal", 1), false, {1, 2, 4, 4});
  softmaxGradCase(Op("masked_softmax").i("causal", 1).i("q_offset", 1), true,
                  {2, 1, 3, 5});
}

TEST(Grad, LayerNorm) {
  std::mt19937 rng(34);
  const int h = 6;
  Buf x = Buf::random({3, h}, rng, -2, 2), g = Buf::random({h}, rng, 0.5, 1.5);
  Buf b = Buf::random({h}, rng), y = Buf::zeros({3, h}),
      dy = Buf::random({3, h}, rng);
  const Op fwd_op = Op("layer_norm").f("eps", 1e-5);
  auto fwd = [&] { return runOk(fwd_op, {&x, &g, &b}, {&y}); };
  Buf dx = Buf::zeros(x.shape), dg = Buf::zeros({h}), db = Buf::zeros({h});
  runOk(Op("layer_norm_grad").f("eps", 1e-5), {&x, &g, &dy}, {&dx, &dg, &db});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "layer_norm dx");
  expectGrad(dg.f, numericGrad(g, fwd, dy.f), "layer_norm dgamma");
  expectGrad(db.f, numericGrad(b, fwd, dy.f), "layer_norm dbeta");
}

TEST(Grad, Gelu) {
  for (std::string approx : {"none", "tanh"}) {
    std::mt19937 rng(35);
    Buf x = Buf::random({37}, rng, -4, 4), y = Buf::zeros({37}),
        dy = Buf::random({37}, rng);
    auto fwd = [&] {
      return runOk(Op("gelu").s("approximate", approx), {&x}, {&y});
    };
    Buf dx = Buf::zeros({37});
    runOk(Op("gelu_grad").s("approximate", approx), {&x, &dy}, {&dx});
    expectGrad(dx.f, numericGrad(x, fwd, dy.f), "gelu_grad " + approx);
  }
}

TEST(Grad, ReluAndSilu) {
  for (std::string act : {"relu", "silu"}) {
    std::mt19937 rng(38);
    // Keep relu's inputs away from the kink at 0, where differences mislead.
    Buf x = Buf::random({5, 7}, rng, -3, 3), y = Buf::zeros({5, 7}),
        dy = Buf::random({5, 7}, rng);
    for (float &v : x.f)
      if (std::abs(v) < 0.05f)
        v = 0.5f;
    auto fwd = [&] { return runOk(Op(act), {&x}, {&y}); };
    fwd();
    for (size_t i = 0; i < x.f.size(); ++i) {
      float want = act == "relu" ? std::max(x.f[i], 0.f)
                                 : x.f[i] / (1.f + std::exp(-x.f[i]));
      EXPECT_NEAR(y.f[i], want, 1e-6f) << act;
    }
    Buf dx = Buf::zeros(x.shape);
    runOk(Op(act + "_grad"), {&x, &dy}, {&dx});
    expectGrad(dx.f, numericGrad(x, fwd, dy.f), act + "_grad");
  }
}

TEST(Grad, Tanh) {
  std::mt19937 rng(36);
  Buf x = Buf::random({3, 7}, rng, -2, 2), y = Buf::zeros({3, 7}),
      dy = Buf::random({3, 7}, rng);
  auto fwd = [&] { return runOk(Op("tanh"), {&x}, {&y}); };
  fwd();
  Buf dx = Buf::zeros(x.shape);
  runOk(Op("tanh_grad"), {&y, &dy}, {&dx});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "tanh_grad");
}

TEST(Grad, Embedding) {
  std::mt19937 rng(37);
  const int v = 6, h = 4;
  // vocab_offset 2: ids 2..7 are this shard's rows; 0, 1, 9 fall outside; 3
  // repeats.
  Buf table = Buf::random({v, h}, rng),
      ids = Buf::ints({2, 4}, {3, 0, 7, 3, 9, 2, 1, 3});
  Buf y = Buf::zeros({2, 4, h}), dy = Buf::random({2, 4, h}, rng);
  const Op op = Op("embedding").i("vocab_offset", 2);
  auto fwd = [&] { return runOk(op, {&table, &ids}, {&y}); };
  Buf dt = Buf::random(
      {v, h}, rng); // garbage: the kernel must overwrite, not accumulate
  runOk(Op("embedding_grad").i("vocab_offset", 2), {&ids, &dy}, {&dt});
  expectGrad(dt.f, numericGrad(table, fwd, dy.f), "embedding_grad");
}

// padding_idx is a global id: its row gets no gradient (torch.nn.Embedding),
// every other row gets what it gets without padding_idx; the forward ignores
// it.
TEST(Grad, EmbeddingPaddingIdx) {
  std::mt19937 rng(38);
  const int v = 6, h = 5;
  // vocab_offset 2: global id 3 is local row 1 (three times), 0 is outside.
  Buf table = Buf::random({v, h}, rng),
      ids = Buf::ints({2, 4}, {3, 0, 7, 3, 4, 2, 3, 4});
  Buf dy = Buf::random({2, 4, h}, rng);
  Buf plain = Buf::random({v, h}, rng), padded = Buf::random({v, h}, rng);
  runOk(Op("embedding_grad").i("vocab_offset", 2), {&ids, &dy}, {&plain});
  runOk(Op("embedding_grad").i("vocab_offset", 2).i("padding_idx", 3),
        {&ids, &dy}, {&padded});
  std::vector<double> want(plain.f.begin(), plain.f.end());
  for (int j = 0; j < h; ++j) {
    ASSERT_NE(plain.f[1 * h + j], 0.f); // row 1 does get gradient without it
    want[1 * h + j] = 0.0;
  }
  expectClose(padded.f, want, 0, 0, "embedding_grad padding_idx=3");

  // A padding id outside this shard's rows changes nothing here.
  runOk(Op("embedding_grad").i("vocab_offset", 2).i("padding_idx", 0),
        {&ids, &dy}, {&padded});
  expectClose(padded.f, {plain.f.begin(), plain.f.end()}, 0, 0,
              "embedding_grad padding_idx=0 (not in the shard)");

  Buf y0 = Buf::zeros({2, 4, h}), y1 = Buf::zeros({2, 4, h});
  runOk(Op("embedding").i("vocab_offset", 2), {&table, &ids}, {&y0});
  runOk(Op("embedding").i("vocab_offset", 2).i("padding_idx", 3),
        {&table, &ids}, {&y1});
  expectClose(y1.f, {y0.f.begin(), y0.f.end()}, 0, 0,
              "embedding ignores padding_idx");
}

TEST(Grad, TakeToken) {
  std::mt19937 rng(38);
  Buf x = Buf::random({2, 4, 3}, rng), y = Buf::zeros({2, 3}),
      dy = Buf::random({2, 3}, rng);
  auto fwd = [&] { return runOk(Op("take_token").i("index", 2), {&x}, {&y}); };
  Buf dx = Buf::random(x.shape, rng);
  runOk(Op("take_token_grad").i("index", 2), {&dy}, {&dx});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "take_token_grad");
}

TEST(Grad, CrossEntropy) {
  std::mt19937 rng(39);
  Buf logits = Buf::random({3, 5}, rng, -2, 2),
      labels = Buf::ints({3}, {1, 4, 0});
  Buf loss = Buf::zeros({}), dloss = Buf::values({}, {0.7f});
  const Op fwd_op = Op("cross_entropy").f("denominator", 3.0);
  auto fwd = [&] { return runOk(fwd_op, {&logits, &labels}, {&loss}); };
  Buf dl = Buf::zeros(logits.shape);
  runOk(Op("cross_entropy_grad").f("denominator", 3.0),
        {&logits, &labels, &dloss}, {&dl});
  expectGrad(dl.f, numericGrad(logits, fwd, dloss.f), "cross_entropy_grad");
}

// Per-row positions (LlamaForSequenceClassification's last tokens).
TEST(Grad, TakeTokenIndices) {
  std::mt19937 rng(41);
  Buf x = Buf::random({3, 4, 2}, rng), y = Buf::zeros({3, 2}),
      dy = Buf::random({3, 2}, rng), idx = Buf::ints({3}, {3, 0, 2});
  auto fwd = [&] { return runOk(Op("take_token"), {&x, &idx}, {&y}); };
  Buf dx = Buf::random(x.shape, rng);
  runOk(Op("take_token_grad"), {&dy, &idx}, {&dx});
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "take_token_grad indices");
}

// A token mean over a counted global batch: the count divides the loss and
// its gradient; a count <= 0 makes both 0.
TEST(Grad, CrossEntropyCount) {
  std::mt19937 rng(42);
  Buf logits = Buf::random({4, 5}, rng, -2, 2),
      labels = Buf::ints({4}, {1, -100, 4, 0});
  Buf loss = Buf::zeros({}), dloss = Buf::values({}, {0.7f});
  for (float n : {3.f, 7.5f, 0.f}) {
    Buf count = Buf::values({}, {n});
    const Op fwd_op = Op("cross_entropy").f("denominator", 2.0);
    auto fwd = [&] {
      return runOk(fwd_op, {&logits, &labels, &count}, {&loss});
    };
    Buf dl = Buf::random(logits.shape, rng);
    runOk(Op("cross_entropy_grad").f("denominator", 2.0),
          {&logits, &labels, &dloss, &count}, {&dl});
    expectGrad(dl.f, numericGrad(logits, fwd, dloss.f),
               "cross_entropy_grad count " + std::to_string(n));
    if (n == 0.f) {
      EXPECT_EQ(fwd()[0], 0.f);
      for (float g : dl.f)
        EXPECT_EQ(g, 0.f);
    }
  }
}

// Dropout is linear in x, and its backward is the same kernel applied to dy.
TEST(Grad, Dropout) {
  std::mt19937 rng(40);
  Buf x = Buf::random({3, 9}, rng), y = Buf::zeros({3, 9}),
      dy = Buf::random({3, 9}, rng);
  const Op op = Op("dropout").f("p", 0.3).i("op_id", 5);
  KernelContext ctx{.seed = 11, .step = 2, .training = true};
  auto fwd = [&] { return runOk(op, {&x}, {&y}, ctx); };
  Buf dx = Buf::zeros(x.shape);
  runOk(op, {&dy}, {&dx}, ctx);
  expectGrad(dx.f, numericGrad(x, fwd, dy.f), "dropout backward");
}

TEST(Grad, SplitMergeHeadsAreMutualInverses) {
  std::mt19937 rng(41);
  Buf x = Buf::random({2, 3, 4, 5}, rng), flat = Buf::zeros({2, 4, 15}),
      back = Buf::zeros(x.shape);
  runOk(Op("merge_heads"), {&x}, {&flat});
  runOk(Op("split_heads"), {&flat}, {&back});
  EXPECT_EQ(back.f, x.f);
  Buf f2 = Buf::random({2, 4, 15}, rng), heads = Buf::zeros({2, 3, 4, 5}),
      f3 = Buf::zeros(f2.shape);
  runOk(Op("split_heads"), {&f2}, {&heads});
  runOk(Op("merge_heads"), {&heads}, {&f3});
  EXPECT_EQ(f3.f, f2.f);
}

} // namespace
} // namespace galaxy::rt::testing
