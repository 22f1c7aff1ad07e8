// cross_entropy over token-level logits [B,S,V] with ignored positions
// (labels == ignore_index, HF's -100 by default): the loss against a naive
// loop, the gradient against finite differences, ignored rows get exactly 0.
#include <cmath>

#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

constexpr int kB = 2, kS = 4, kV = 6;

// Σ over counted positions of lse(row) − row[label], / denom.
double naiveLoss(const Buf &logits, const Buf &labels, int ignore,
                 double denom) {
  double total = 0;
  for (int r = 0; r < kB * kS; ++r) {
    if (labels.i[r] == ignore)
      continue;
    double s = 0;
    for (int j = 0; j < kV; ++j)
      s += std::exp(double(logits.f[r * kV + j]));
    total += std::log(s) - logits.f[r * kV + labels.i[r]];
  }
  return total / denom;
}

TEST(TokenLoss, ForwardSkipsIgnoredPositions) {
  std::mt19937 rng(71);
  Buf logits = Buf::random({kB, kS, kV}, rng, -3, 3);
  Buf labels = Buf::ints({kB, kS}, {1, -100, 5, 0, -100, -100, 2, 3});
  Buf loss = Buf::zeros({});
  // No ignore_index attribute: -100, Hugging Face's default.
  runOk(Op("cross_entropy").f("denominator", 5.0), {&logits, &labels}, {&loss});
  expectClose(loss.f, {naiveLoss(logits, labels, -100, 5.0)}, 1e-6, 1e-7,
              "cross_entropy [B,S,V]");
  // Another ignore_index: -100 is then an error, 3 is skipped.
  Buf pad = Buf::ints({kB, kS}, {1, 3, 5, 0, 3, 3, 2, 4});
  runOk(Op("cross_entropy").f("denominator", 5.0).i("ignore_index", 3),
        {&logits, &pad}, {&loss});
  expectClose(loss.f, {naiveLoss(logits, pad, 3, 5.0)}, 1e-6, 1e-7,
              "cross_entropy ignore_index 3");
  EXPECT_FALSE(
      run(Op("cross_entropy").f("denominator", 5.0).i("ignore_index", 3),
          {&logits, &labels}, {&loss})
          .ok());
}

TEST(TokenLoss, GradientMatchesFiniteDifferencesAndIgnoresPadding) {
  std::mt19937 rng(72);
  Buf logits = Buf::random({kB, kS, kV}, rng, -2, 2);
  Buf labels = Buf::ints({kB, kS}, {-100, 4, 0, -100, 1, 5, -100, 2});
  Buf loss = Buf::zeros({}), dloss = Buf::values({}, {0.6f});
  const Op fwd = Op("cross_entropy").f("denominator", 5.0);
  Buf dl = Buf::random(logits.shape, rng); // garbage: every entry is written
  runOk(Op("cross_entropy_grad").f("denominator", 5.0),
        {&logits, &labels, &dloss}, {&dl});
  // Central differences of 0.6·loss.
  constexpr double h = 5e-3;
  for (size_t k = 0; k < logits.f.size(); ++k) {
    const float orig = logits.f[k];
    logits.f[k] = orig + float(h);
    const double up = runOk(fwd, {&logits, &labels}, {&loss})[0];
    logits.f[k] = orig - float(h);
    const double down = runOk(fwd, {&logits, &labels}, {&loss})[0];
    logits.f[k] = orig;
    const double numeric = 0.6 * (up - down) / (2 * h);
    EXPECT_NEAR(dl.f[k], numeric, 1e-2 * std::fabs(numeric) + 2e-4)
        << "dlogits[" << k << "]";
    if (labels.i[k / kV] == -100)
      EXPECT_EQ(dl.f[k], 0.f) << "ignored position " << k / kV;
  }
}

} // namespace
} // namespace galaxy::rt::testing
