// nextToken: greedy, top-k/top-p edge cases, seeded determinism and the
// empirical distribution of the draws against softmax.
#include "runtime/exec/sampling.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace galaxy::rt {
namespace {

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f};
constexpr int64_t kV = 6;
constexpr int32_t kArgmax = 1;

SamplingOptions sampling(double t, int64_t k = 0, double p = 1,
                         uint64_t seed = 7) {
  SamplingOptions o;
  o.temperature = t;
  o.topK = k;
  o.topP = p;
  o.seed = seed;
  return o;
}

TEST(NextToken, TemperatureZeroIsArgmax) {
  for (int64_t step = 0; step < 50; ++step)
    EXPECT_EQ(nextToken(kLogits.data(), kV, sampling(0), 3, step), kArgmax);
  // The first of equal maxima, as the greedy paths always took.
  const std::vector<float> tie = {1, 3, 3, 0};
  EXPECT_EQ(nextToken(tie.data(), 4, sampling(0), 0, 0), 1);
}

TEST(NextToken, TopKOneIsArgmaxAtAnyTemperature) {
  for (double t : {0.1, 1.0, 10.0, 1000.0})
    for (int64_t step = 0; step < 50; ++step)
      EXPECT_EQ(nextToken(kLogits.data(), kV, sampling(t, 1), step, step),
                kArgmax);
}

TEST(NextToken, TinyTopPIsArgmax) {
  for (double t : {0.5, 1.0, 100.0})
    for (int64_t step = 0; step < 50; ++step)
      EXPECT_EQ(nextToken(kLogits.data(), kV, sampling(t, 0, 1e-9), 1, step),
                kArgmax);
}

TEST(NextToken, FixedSeedGivesFixedTokens) {
  std::vector<int32_t> a, b;
  for (int64_t step = 0; step < 64; ++step) {
    a.push_back(nextToken(kLogits.data(), kV, sampling(1), 2, step));
    b.push_back(nextToken(kLogits.data(), kV, sampling(1), 2, step));
  }
  EXPECT_EQ(a, b);
  // Pinned: a change of the draw's addressing changes every sampled output
  // (files generated before it would no longer reproduce).
  std::vector<int32_t> pinned;
  for (int64_t step = 0; step < 12; ++step)
    pinned.push_back(
        nextToken(kLogits.data(), kV, sampling(1, 0, 1, 42), 0, step));
  EXPECT_EQ(pinned, std::vector<int32_t>({3, 4, 0, 5, 5, 4, 5, 5, 3, 3, 4, 1}));
}

TEST(NextToken, DifferentSeedsAndPromptsDiffer) {
  std::vector<int32_t> s1, s2, p1;
  for (int64_t step = 0; step < 64; ++step) {
    s1.push_back(nextToken(kLogits.data(), kV, sampling(1, 0, 1, 1), 0, step));
    s2.push_back(nextToken(kLogits.data(), kV, sampling(1, 0, 1, 2), 0, step));
    p1.push_back(nextToken(kLogits.data(), kV, sampling(1, 0, 1, 1), 1, step));
  }
  EXPECT_NE(s1, s2);
  EXPECT_NE(s1, p1);
}

// Frequencies over many (prompt, step) addresses against the expected
// probabilities, each within 5 standard errors.
void expectDistribution(const SamplingOptions &o,
                        const std::vector<double> &want) {
  const int64_t n = 200000;
  std::vector<int64_t> count(kV, 0);
  for (int64_t i = 0; i < n; ++i)
    ++count[nextToken(kLogits.data(), kV, o, i / 100, i % 100)];
  for (int64_t v = 0; v < kV; ++v) {
    const double f = double(count[v]) / n;
    const double se = std::sqrt(want[v] * (1 - want[v]) / n) + 1e-9;
    EXPECT_NEAR(f, want[v], 5 * se) << "token " << v;
  }
}

std::vector<double> softmax(double t, std::vector<bool> keep) {
  std::vector<double> p(kV);
  double sum = 0;
  for (int64_t v = 0; v < kV; ++v)
    sum += p[v] = keep[v] ? std::exp(kLogits[v] / t) : 0.0;
  for (double &x : p)
    x /= sum;
  return p;
}

TEST(NextToken, TemperatureOneMatchesSoftmax) {
  expectDistribution(sampling(1), softmax(1, std::vector<bool>(kV, true)));
}

TEST(NextToken, TemperatureTwoMatchesSoftmax) {
  expectDistribution(sampling(2), softmax(2, std::vector<bool>(kV, true)));
}

TEST(NextToken, TopKRenormalisesTheKMostLikely) {
  // Top 3 by logit: ids 1 (2.0), 5 (1.9), 3 (1.5).
  expectDistribution(sampling(1, 3),
                     softmax(1, {false, true, false, true, false, true}));
}

TEST(NextToken, TopPKeepsTheSmallestSetReachingP) {
  const std::vector<double> full = softmax(1, std::vector<bool>(kV, true));
  // Ids 1 and 5 hold less than 0.8 together; id 3 makes it past 0.8.
  ASSERT_LT(full[1] + full[5], 0.8);
  ASSERT_GE(full[1] + full[5] + full[3], 0.8);
  expectDistribution(sampling(1, 0, 0.8),
                     softmax(1, {false, true, false, true, false, true}));
  // Reached at the second token: no third one.
  expectDistribution(sampling(1, 0, (full[1] + full[5]) * (1 - 1e-12)),
                     softmax(1, {false, true, false, false, false, true}));
}

TEST(CheckSamplingOptions, RefusesOutOfRange) {
  EXPECT_TRUE(checkSamplingOptions(sampling(0)).ok());
  EXPECT_TRUE(checkSamplingOptions(sampling(0.7, 5, 0.9)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(-0.1)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(INFINITY)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(NAN)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(1, -1)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(1, 0, 0)).ok());
  EXPECT_FALSE(checkSamplingOptions(sampling(1, 0, 1.5)).ok());
}

} // namespace
} // namespace galaxy::rt
