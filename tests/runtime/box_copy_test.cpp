#include "runtime/exec/box_copy.h"

#include <numeric>

#include "gtest/gtest.h"

namespace galaxy::rt {
namespace {

TEST(BoxCopy, ExtractAndInsertAreInverse) {
  const std::vector<int64_t> full = {3, 4, 5}, offset = {1, 1, 2},
                             box = {2, 2, 3};
  std::vector<int32_t> src(60);
  std::iota(src.begin(), src.end(), 0);
  std::vector<int32_t> got(12);
  extractBox(src.data(), full, offset, box, got.data(), 4);
  std::vector<int32_t> want;
  for (int a = 1; a < 3; ++a)
    for (int b = 1; b < 3; ++b)
      for (int c = 2; c < 5; ++c)
        want.push_back((a * 4 + b) * 5 + c);
  EXPECT_EQ(got, want);
  std::vector<int32_t> back(60, -1);
  insertBox(got.data(), box, back.data(), full, offset, 4);
  for (int i = 0; i < 60; ++i) {
    const int a = i / 20, b = i / 5 % 4, c = i % 5;
    const bool inside = a >= 1 && b >= 1 && b < 3 && c >= 2;
    EXPECT_EQ(back[i], inside ? i : -1) << i;
  }
}

TEST(BoxCopy, EdgeCases) {
  int32_t scalar = 42, out = 0;
  extractBox(&scalar, {}, {}, {}, &out, 4);
  EXPECT_EQ(out, 42);
  std::vector<int32_t> src = {1, 2, 3, 4};
  std::vector<int32_t> dst(4, 0);
  extractBox(src.data(), std::vector<int64_t>{2, 2}, std::vector<int64_t>{0, 0},
             std::vector<int64_t>{2, 2}, dst.data(), 4);
  EXPECT_EQ(dst, src);
  extractBox(src.data(), std::vector<int64_t>{2, 2}, std::vector<int64_t>{1, 0},
             std::vector<int64_t>{0, 2}, dst.data(), 4); // empty box: no write
  EXPECT_EQ(dst, src);
  EXPECT_TRUE(boxInside(std::vector<int64_t>{2, 2}, std::vector<int64_t>{1, 0},
                        std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(boxInside(std::vector<int64_t>{2, 2}, std::vector<int64_t>{1, 1},
                         std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(boxInside(std::vector<int64_t>{2, 2}, std::vector<int64_t>{0},
                         std::vector<int64_t>{1, 2}));
}

} // namespace
} // namespace galaxy::rt
