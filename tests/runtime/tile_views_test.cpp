// Instr.tile (comm_overlap_tiles, compiler/CommTiling.h): a tiled
// instruction reads and writes only its rows of the listed operands, and a
// tile outside its buffer is refused when the plan is bound.
#include <vector>

#include "runtime/exec/comm_overlap.h"
#include "runtime/exec/executor.h"
#include "tests/runtime/plan_builder.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

void setTile(plan::Instr &i, int64_t begin, int64_t count,
             const std::vector<int32_t> &inputs) {
  plan::Tile *t = i.mutable_tile();
  t->set_begin(begin);
  t->set_count(count);
  for (int32_t k : inputs)
    t->add_inputs(k);
  t->add_outputs(0);
}

// y = x + x over a [4, 2, 3] batch, as tiles of rows {begin, count}.
plan::Plan tiledAdd(const std::vector<std::pair<int64_t, int64_t>> &tiles) {
  PlanBuilder pb(0, 1);
  const int x = pb.input("attention_mask", {4, 2, 3}, plan::F32);
  const int y = pb.arena("y", {4, 2, 3});
  pb.bindInput("p", "attention_mask", x);
  setFloat(pb.add("p", "fill", {}, {y}), "value", -1);
  for (auto [begin, count] : tiles)
    setTile(pb.add("p", "add", {x, x}, {y}), begin, count, {0, 1});
  pb.bindOutput("p", "y", y);
  return pb.finish();
}

std::vector<float> run(plan::Plan plan) {
  auto backend = makeCpuBackend();
  auto ex = Executor::create(std::move(plan), *backend);
  EXPECT_TRUE(ex.ok()) << ex.status();
  if (!ex.ok())
    return {};
  io::Batch batch;
  for (int i = 0; i < 24; ++i)
    batch.floats("attention_mask").push_back(float(i));
  auto out = (*ex)->run("p", batch, KernelContext{});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? (*out)["y"] : std::vector<float>{};
}

TEST(TileViews, TilesComputeTheirRowsOnly) {
  std::vector<float> twice;
  for (int i = 0; i < 24; ++i)
    twice.push_back(2.0f * i);
  EXPECT_EQ(run(tiledAdd({{0, 3}, {3, 1}})), twice);
  // Rows 1..3 only: row 0 (6 elements) keeps the fill.
  std::vector<float> partly = twice;
  std::fill(partly.begin(), partly.begin() + 6, -1.0f);
  EXPECT_EQ(run(tiledAdd({{1, 3}})), partly);
}

TEST(TileViews, ATileOutsideItsBufferIsRefused) {
  auto backend = makeCpuBackend();
  auto ex = Executor::create(tiledAdd({{0, 3}, {3, 2}}), *backend);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.status().message().find("tile rows [3, +2)"), std::string::npos)
      << ex.status();
}

// Collectives in tiles: a GEMM tile waits only for the collective tile it
// reads (gathered rows), and a collective tile runs while the next tile's
// producer computes (scattered rows).
TEST(TileViews, AGemmTileWaitsForItsCollectiveTileOnly) {
  static char a[512];
  auto span = [](int lo, int hi) {
    return MemoryAccess::Range{a + lo, a + hi};
  };
  auto at = [&](std::vector<MemoryAccess::Range> r,
                std::vector<MemoryAccess::Range> w) {
    return MemoryAccess{std::move(r), std::move(w)};
  };
  // 0,1: all_gather tiles into [0,64) and [64,128); 2,3: linear tiles
  // reading them; 4: a linear tile writing [256,320); 5: its reduce_scatter
  // tile; 6: the next tile's linear writing [320,384); 7: its reduce_scatter;
  // 8: reads both scattered tiles.
  const std::vector<MemoryAccess> acc = {
      at({span(300, 308)}, {span(0, 64)}),
      at({span(308, 316)}, {span(64, 128)}),
      at({span(0, 64)}, {span(128, 192)}),
      at({span(64, 128)}, {span(192, 256)}),
      at({span(128, 192)}, {span(256, 320)}),
      at({span(256, 320)}, {span(400, 416)}),
      at({span(192, 256)}, {span(320, 384)}),
      at({span(320, 384)}, {span(416, 432)}),
      at({span(400, 432)}, {span(448, 512)})};
  // The all_gather's inputs [300,316) are not written by the later tiles.
  const std::vector<bool> async = {true, true,  false, false, false,
                                   true, false, true,  false};
  EXPECT_EQ(completionPoints(acc, async),
            (std::vector<int>{-1, -1, 0, 1, -1, -1, -1, -1, 7, 7}));
}

} // namespace
} // namespace galaxy::rt::testing
