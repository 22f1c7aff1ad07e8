// Layout text form and per-rank shapes, the vocabulary of partitioned IR.
#include "galaxy/Layout.h"

#include "galaxy/GalaxyDialect.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

namespace galaxy {
namespace {

TEST(Layout, RoundTripsThroughText) {
  for (const char *text : {"R", "P", "S(1;5,3)", "S(0;2,1,1)"}) {
    auto l = Layout::parse(text);
    ASSERT_TRUE(l.has_value()) << text;
    EXPECT_EQ(l->str(), text);
  }
  EXPECT_FALSE(Layout::parse("S(1;a)").has_value());
  EXPECT_FALSE(Layout::parse("Q").has_value());
}

TEST(Layout, UnevenShardsGiveLocalShapesAndOffsets) {
  Layout l = Layout::sharded(1, {5, 2, 1});
  std::vector<int64_t> shape = {3, 8, 64};
  EXPECT_EQ(l.localShape(shape, 0), (std::vector<int64_t>{3, 5, 64}));
  EXPECT_EQ(l.localShape(shape, 2), (std::vector<int64_t>{3, 1, 64}));
  EXPECT_EQ(l.localOffset(shape, 0), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(l.localOffset(shape, 1), (std::vector<int64_t>{0, 5, 0}));
  EXPECT_EQ(l.localOffset(shape, 2), (std::vector<int64_t>{0, 7, 0}));
  EXPECT_EQ(Layout::partial().localShape(shape, 1), shape);
}

TEST(Layout, EqualityIgnoresSizesOnlyForNonSharded) {
  EXPECT_EQ(Layout::replicated(), Layout::replicated());
  EXPECT_NE(Layout::sharded(1, {4, 4}), Layout::sharded(1, {5, 3}));
  EXPECT_NE(Layout::sharded(1, {4, 4}), Layout::sharded(2, {4, 4}));
  EXPECT_NE(Layout::partial(), Layout::replicated());
}

TEST(Layout, AttributeCarriesTheLayout) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<GalaxyDialect>();
  for (const Layout &l :
       {Layout::replicated(), Layout::partial(), Layout::sharded(1, {5, 3})})
    EXPECT_EQ(LayoutAttr::get(&ctx, l).getLayout(), l) << l.str();
  // A non-sharded layout's dim and sizes mean nothing: one attribute for R.
  EXPECT_EQ(LayoutAttr::get(&ctx, Layout{Layout::R, 2, {4}}),
            LayoutAttr::get(&ctx, Layout::replicated()));
  EXPECT_EQ(DimsAttr::get(&ctx, "B,S,H").getNames(),
            (llvm::SmallVector<llvm::StringRef>{"B", "S", "H"}));
  EXPECT_TRUE(DimsAttr::get(&ctx, "").getNames().empty());
}

} // namespace
} // namespace galaxy
