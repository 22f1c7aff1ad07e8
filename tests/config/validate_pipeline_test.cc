// Pipelines: world = stages x group size, any two of (world, stage list, the
// group's split lists) fix the third; microbatches; "pp+MODE" parsing.
#include "compiler/config/enum_names.h"
#include "compiler/config/validate.h"

#include "tests/config/contains.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using Ints = std::vector<int64_t>;

GalaxyConfig pipe(std::vector<int64_t> stages = {}) {
  GalaxyConfig c;
  c.source = "pp.json";
  c.parallel_mode = ParallelMode::kPP;
  c.stage_num_hidden_layers_list = std::move(stages);
  return c;
}

absl::StatusOr<GalaxyConfig> resolve(const GalaxyConfig &c, int world = 0,
                                     ParallelMode group = ParallelMode::kSerial,
                                     bool fromCommandLine = false) {
  ParallelChoice choice;
  if (fromCommandLine)
    choice.mode = ParallelMode::kPP;
  choice.groupMode = group;
  choice.world = world;
  GalaxyConfig in = c;
  if (!fromCommandLine)
    in.pp_group_mode = group;
  return resolveConfig(in, choice);
}

TEST(ValidatePipeline, PlainPipelineWorldIsTheStageCount) {
  auto r = resolve(pipe({4, 8}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->world_size, 2);
  EXPECT_EQ(r->pp_group_size, 1);
  // No list: the world splits the 12 layers evenly.
  r = resolve(pipe(), 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stage_num_hidden_layers_list, Ints({4, 4, 4}));
}

TEST(ValidatePipeline, HybridWorldIsStagesTimesGroup) {
  // Stages from the list, group size from the tp list: world 2 x 3.
  GalaxyConfig c = pipe({6, 6});
  c.tp_num_attention_heads_list = {6, 4, 2};
  auto r = resolve(c, 0, ParallelMode::kTP);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->world_size, 6);
  EXPECT_EQ(r->pp_group_size, 3);
  EXPECT_EQ(r->tp_intermediate_size_list, Ints({1024, 1024, 1024}));
  // World and stages given: the group size follows, lists split evenly.
  r = resolve(pipe({3, 3, 6}), 6, ParallelMode::kGalaxy, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pp_group_size, 2);
  EXPECT_EQ(r->tp_num_attention_heads_list, Ints({6, 6}));
  EXPECT_EQ(r->seq_scatter_list, Ints({16, 16}));
  EXPECT_EQ(modeString(r->parallel_mode, r->pp_group_mode), "pp+galaxy");
  // World and group list given: the stage count follows.
  c = pipe();
  c.tp_num_attention_heads_list = {8, 4};
  r = resolve(c, 4, ParallelMode::kTP);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stage_num_hidden_layers_list, Ints({6, 6}));
}

TEST(ValidatePipeline, ErrorsNameTheShapeAndTheFix) {
  auto r = resolve(pipe({6, 6}), 3);
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "world size 3 must be stages x group size, but "
                  "stage_num_hidden_layers_list gives 2 stages and a plain "
                  "pipeline has 1 rank per stage; use --world 2");
  GalaxyConfig c = pipe({6, 6});
  c.tp_num_attention_heads_list = {6, 6};
  r = resolve(c, 6, ParallelMode::kTP);
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "the group has 2 ranks; use --world 4");
  r = resolve(pipe({4, 4, 4}), 4, ParallelMode::kTP);
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "world size 4 is not a multiple of the 3 stages");
  r = resolve(pipe({6, 0, 6}));
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "stage_num_hidden_layers_list = [6, 0, 6] gives stage 1 0 "
                  "layers");
  // pp+dp splits every microbatch over the group: each needs a row per rank.
  c = pipe({6, 6});
  c.batch_size = 8;
  c.num_microbatches = 4;
  r = resolve(c, 8, ParallelMode::kDP);
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "has a microbatch of 2 rows, but pp+dp splits every "
                  "microbatch over its 4 group ranks");
}

TEST(ValidatePipeline, MicrobatchesSplitTheBatch) {
  GalaxyConfig c = pipe({6, 6});
  c.batch_size = 6;
  c.num_microbatches = 4;
  auto r = resolve(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pp_microbatch_list, Ints({2, 2, 1, 1}));
  c.num_microbatches = 1;
  r = resolve(c);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_CONTAINS(r->warnings.back(), "1 microbatch for 2 pipeline stages");
  c.num_microbatches = 2;
  c.pp_microbatch_list = {5, 2};
  r = resolve(c);
  EXPECT_CONTAINS(std::string(r.status().message()),
                  "pp_microbatch_list = [5, 2] sums to 7 but batch_size is 6");
}

TEST(ValidatePipeline, ModeSpecParsing) {
  auto m = parseModeSpec("pp+galaxy");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mode, ParallelMode::kPP);
  EXPECT_EQ(m->group, ParallelMode::kGalaxy);
  m = parseModeSpec("tp");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mode, ParallelMode::kTP);
  EXPECT_EQ(m->group, ParallelMode::kSerial);
  for (const char *bad : {"pp+pp", "pp+serial", "pp+xp", "xp"})
    EXPECT_FALSE(parseModeSpec(bad).ok()) << bad;
  EXPECT_CONTAINS(std::string(parseModeSpec("pp+xp").status().message()),
                  "\"pp+dp\", \"pp+tp\", \"pp+sp\" or \"pp+galaxy\"");
}

} // namespace
} // namespace galaxy::config
