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

} // namespace
} // namespace galaxy::config
