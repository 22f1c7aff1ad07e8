// partitionSpec: what the partition pass is told for each resolved mode; a
// pipeline stage is partitioned as its group.
#include "compiler/config/validate.h"

#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using Ints = std::vector<int64_t>;

GalaxyConfig resolvedFor(ParallelMode mode, int world,
                         ParallelMode group = ParallelMode::kSerial,
                         GalaxyConfig in = {}) {
  ParallelChoice choice;
  choice.mode = mode;
  choice.world = world;
  choice.groupMode = group;
  absl::StatusOr<GalaxyConfig> r = resolveConfig(in, choice);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : GalaxyConfig{};
}

std::vector<std::string> methods(const PartitionSpec &s) {
  return {s.att, s.con, s.mlp, s.other};
}

TEST(PartitionSpec, SerialPartitionsNothing) {
  PartitionSpec s = partitionSpec(resolvedFor(ParallelMode::kSerial, 1));
  EXPECT_EQ(s.world, 1);
  EXPECT_EQ(methods(s),
            (std::vector<std::string>{"none", "none", "none", "none"}));
  EXPECT_TRUE(s.batchSizes.empty() && s.headSizes.empty());
}

TEST(PartitionSpec, DataParallelSplitsEveryRegionByBatch) {
  PartitionSpec s = partitionSpec(resolvedFor(ParallelMode::kDP, 3));
  EXPECT_EQ(s.world, 3);
  EXPECT_EQ(methods(s), (std::vector<std::string>{"dp", "dp", "dp", "dp"}));
  EXPECT_EQ(s.batchSizes, (Ints{2, 1, 1})); // batch_size 4
}

TEST(PartitionSpec, TensorParallelShardsAttentionAndMlp) {
  PartitionSpec s = partitionSpec(resolvedFor(ParallelMode::kTP, 2));
  EXPECT_EQ(methods(s), (std::vector<std::string>{"tp", "none", "tp", "none"}));
  EXPECT_EQ(s.headSizes, (Ints{6, 6}));
  EXPECT_EQ(s.interSizes, (Ints{1536, 1536}));
  EXPECT_TRUE(s.seqSizes.empty());
}

TEST(PartitionSpec, GalaxyTakesTheRegionMethods) {
  PartitionSpec s = partitionSpec(resolvedFor(ParallelMode::kGalaxy, 2));
  EXPECT_EQ(methods(s), (std::vector<std::string>{"tp", "sp", "tp", "none"}));
  EXPECT_EQ(s.seqSizes, (Ints{16, 16}));
}

TEST(PartitionSpec, PipelineStageIsPartitionedAsItsGroup) {
  GalaxyConfig in;
  in.stage_num_hidden_layers_list = {6, 6};
  GalaxyConfig c = resolvedFor(ParallelMode::kPP, 4, ParallelMode::kTP, in);
  PartitionSpec s = partitionSpec(c, /*rows=*/4);
  EXPECT_EQ(s.world, 2); // 4 ranks = 2 stages x 2
  EXPECT_EQ(methods(s), (std::vector<std::string>{"tp", "none", "tp", "none"}));
  EXPECT_EQ(s.headSizes, (Ints{6, 6}));
}

TEST(PartitionSpec, PipelineDataParallelGroupSplitsTheMicrobatchRows) {
  GalaxyConfig in;
  in.stage_num_hidden_layers_list = {6, 6};
  GalaxyConfig c = resolvedFor(ParallelMode::kPP, 4, ParallelMode::kDP, in);
  EXPECT_TRUE(c.dp_batch_list.empty()); // known only per microbatch
  PartitionSpec s = partitionSpec(c, /*rows=*/3);
  EXPECT_EQ(s.world, 2);
  EXPECT_EQ(methods(s), (std::vector<std::string>{"dp", "dp", "dp", "dp"}));
  EXPECT_EQ(s.batchSizes, (Ints{2, 1}));
}

TEST(PartitionSpec, PlainPipelineStageRunsOnOneRank) {
  GalaxyConfig c = resolvedFor(ParallelMode::kPP, 2);
  PartitionSpec s = partitionSpec(c, /*rows=*/4);
  EXPECT_EQ(s.world, 1);
  EXPECT_EQ(methods(s),
            (std::vector<std::string>{"none", "none", "none", "none"}));
}

} // namespace
} // namespace galaxy::config
