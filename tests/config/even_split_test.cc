#include "compiler/config/split.h"

#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using V = std::vector<int64_t>;

TEST(EvenSplit, ExactDivision) { EXPECT_EQ(evenSplit(12, 2), (V{6, 6})); }

TEST(EvenSplit, RemainderGoesToFirstRanks) {
  EXPECT_EQ(evenSplit(10, 3), (V{4, 3, 3}));
  EXPECT_EQ(evenSplit(32, 3), (V{11, 11, 10}));
  EXPECT_EQ(evenSplit(3072, 5), (V{615, 615, 614, 614, 614}));
}

TEST(EvenSplit, OnePartAndDegenerateCases) {
  EXPECT_EQ(evenSplit(7, 1), (V{7}));
  EXPECT_EQ(evenSplit(2, 4), (V{1, 1, 0, 0}));
  EXPECT_TRUE(evenSplit(5, 0).empty());
  EXPECT_TRUE(evenSplit(5, -1).empty());
}

// BART's target positions under SP follow seq_scatter_list this way.
TEST(ProportionalSplit, ExactWhenTheWeightsSumToTheExtent) {
  EXPECT_EQ(proportionalSplit({7, 5}, 12), (V{7, 5}));
  EXPECT_EQ(proportionalSplit({5, 4, 3}, 12), (V{5, 4, 3}));
}

TEST(ProportionalSplit, BoundariesRoundHalfUp) {
  EXPECT_EQ(proportionalSplit({7, 5}, 10), (V{6, 4}));       // 5.83 -> 6
  EXPECT_EQ(proportionalSplit({5, 4, 3}, 10), (V{4, 4, 2})); // 4.17, 7.5
  EXPECT_EQ(proportionalSplit({6, 6}, 5), (V{3, 2}));        // 2.5 -> 3
  EXPECT_EQ(proportionalSplit({10, 1, 1}, 4), (V{3, 1, 0}));
}

TEST(ProportionalSplit, LargeSizesDoNotOverflow) {
  // 2 * cum * extent passes 2^63 here.
  const int64_t big = (int64_t{1} << 31) - 1;
  EXPECT_EQ(proportionalSplit({big, big, big}, big - 1),
            (V{715827882, 715827882, 715827882}));
}

TEST(ProportionalSplit, NoWeight) {
  EXPECT_TRUE(proportionalSplit({}, 10).empty());
  EXPECT_TRUE(proportionalSplit({0, 0}, 10).empty());
}

} // namespace
} // namespace galaxy::config
