// The parallel part: mode/world from the command line or the file, split
// lists (one entry per rank, each >= 1, summing to their total), region
// methods.
#include "compiler/config/validate.h"

#include "compiler/config/parse.h"

#include "tests/config/contains.h"
#include "tests/config/validate_util.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using Ints = std::vector<int64_t>;

GalaxyConfig named() { return testing::named("p.json"); }

std::string errorOf(const GalaxyConfig &c, ParallelMode mode, int world) {
  absl::Status s = validate(c, mode, world);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

GalaxyConfig resolved(const GalaxyConfig &c, ParallelChoice choice) {
  absl::StatusOr<GalaxyConfig> r = resolveConfig(c, choice);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : GalaxyConfig{};
}

TEST(ValidateParallel, ListLengthMustMatchWorld) {
  GalaxyConfig c = named();
  c.tp_num_attention_heads_list = {8, 2, 1};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "p.json: tp_num_attention_heads_list = [8, 2, 1] has 3 "
                  "entries but world size is 2 (one entry per rank); the "
                  "world size comes from the command line");
}

TEST(ValidateParallel, ListsMustSumToTheirTotal) {
  GalaxyConfig c = named();
  c.seq_scatter_list = {20, 10};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kSP, 2),
                  "seq_scatter_list = [20, 10] sums to 30 but pad_size is 32");
  c = named();
  c.tp_intermediate_size_list = {1536, 1000};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "tp_intermediate_size_list = [1536, 1000] sums to 2536 but "
                  "intermediate_size is 3072");
  c = named();
  c.tp_num_attention_heads_list = {6, 5};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "tp_num_attention_heads_list = [6, 5] sums to 11 but "
                  "num_attention_heads is 12");
  c = named();
  c.stage_num_hidden_layers_list = {6, 7};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kPP, 2),
                  "stage_num_hidden_layers_list = [6, 7] sums to 13 but "
                  "num_hidden_layers is 12");
  c = named();
  c.dp_batch_list = {2, 1};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kDP, 2),
                  "dp_batch_list = [2, 1] sums to 3 but batch_size is 4");
}

TEST(ValidateParallel, EveryRankGetsWork) {
  GalaxyConfig c = named();
  c.tp_num_attention_heads_list = {12, 0};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "tp_num_attention_heads_list = [12, 0] gives rank 1 0 "
                  "heads; every rank must get at least one head (ranks must "
                  "get work)");
  c = named();
  c.seq_scatter_list = {40, -8};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kSP, 2),
                  "seq_scatter_list = [40, -8] gives rank 1 -8 positions");
  // The default split cannot leave a rank without a head either.
  c = named();
  c.num_attention_heads = 2;
  c.hidden_size = 64;
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 4),
                  "num_attention_heads = 2 cannot be split over 4 ranks "
                  "(tp_num_attention_heads_list): every rank needs at least "
                  "one head");
}

TEST(ValidateParallel, AbsentListsSplitEvenly) {
  GalaxyConfig r = resolved(named(), {ParallelMode::kTP, 5});
  EXPECT_EQ(r.world_size, 5);
  EXPECT_EQ(r.tp_num_attention_heads_list, (Ints{3, 3, 2, 2, 2}));
  EXPECT_EQ(r.tp_intermediate_size_list, (Ints{615, 615, 614, 614, 614}));
  r = resolved(named(), {ParallelMode::kSP, 3});
  EXPECT_EQ(r.seq_scatter_list, (Ints{11, 11, 10}));
  r = resolved(named(), {ParallelMode::kDP, 2});
  EXPECT_EQ(r.dp_batch_list, (Ints{2, 2}));
  r = resolved(named(), {ParallelMode::kPP, 2});
  EXPECT_EQ(r.stage_num_hidden_layers_list, (Ints{6, 6}));
  EXPECT_EQ(r.pp_microbatch_list, (Ints{4}));
}

// An encoder-decoder's decoder heads and FFN columns follow the encoder's
// lists in proportion: every entry must give the decoder whole shares too
// (here heads in multiples of 2, decoder 2 of 4; columns in multiples of 4,
// decoder 48 of 64).
GalaxyConfig bart() {
  absl::StatusOr<GalaxyConfig> c = parseConfig(
      R"({"d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
          "encoder_attention_heads": 4, "decoder_attention_heads": 2,
          "encoder_ffn_dim": 64, "decoder_ffn_dim": 48, "pad_size": 8})",
      "b.json");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : GalaxyConfig{};
}

TEST(ValidateParallel, DecoderSharesMustBeWhole) {
  GalaxyConfig c = bart();
  c.tp_num_attention_heads_list = {3, 1};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "b.json: tp_num_attention_heads_list = [3, 1] gives rank 0 "
                  "3 heads, not a multiple of 2: the decoder's 2 heads "
                  "(decoder_attention_heads = 2) follow the list in "
                  "proportion, 1 for every 2 of encoder_attention_heads = 4, "
                  "and a rank's share must be whole heads; use multiples of "
                  "2, e.g. tp_num_attention_heads_list = [2, 2]");
  // 48/64 = 3/4: entries must be multiples of 4.
  c = bart();
  c.tp_intermediate_size_list = {30, 34};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 2),
                  "tp_intermediate_size_list = [30, 34] gives rank 0 30 "
                  "columns, not a multiple of 4: the decoder's 48 columns "
                  "(decoder_ffn_dim = 48) follow the list in proportion, 3 "
                  "for every 4 of encoder_ffn_dim = 64, and a rank's share "
                  "must be whole columns; use multiples of 4, e.g. "
                  "tp_intermediate_size_list = [32, 32]");
  // Galaxy mode's lists alike; the sum is named by the file's key.
  c = bart();
  c.tp_intermediate_size_list = {40, 20};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kGalaxy, 2),
                  "tp_intermediate_size_list = [40, 20] sums to 60 but "
                  "encoder_ffn_dim is 64");
  // No list over 3 ranks gives each a whole decoder head.
  c = bart();
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 3),
                  "encoder_attention_heads = 4 cannot be split over 3 ranks "
                  "(tp_num_attention_heads_list): the decoder's 2 heads");
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 3), "use at most 2 ranks");
}

TEST(ValidateParallel, DecoderSharesSplitWholeByDefault) {
  // The even default split is in multiples, so the decoder splits too.
  GalaxyConfig r = resolved(bart(), {ParallelMode::kTP, 2});
  EXPECT_EQ(r.tp_num_attention_heads_list, (Ints{2, 2}));
  EXPECT_EQ(r.tp_intermediate_size_list, (Ints{32, 32}));
  GalaxyConfig c = bart();
  c.num_attention_heads = 2; // the decoder's 2 divide whatever the list is
  c.tp_num_attention_heads_list = {1, 1};
  c.tp_intermediate_size_list = {12, 52};
  r = resolved(c, {ParallelMode::kTP, 2});
  EXPECT_EQ(r.tp_intermediate_size_list, (Ints{12, 52}));
}

TEST(ValidateParallel, UnevenListsAreFine) {
  GalaxyConfig c = named();
  c.tp_num_attention_heads_list = {8, 4};
  c.tp_intermediate_size_list = {2048, 1024};
  c.seq_scatter_list = {20, 12};
  GalaxyConfig r = resolved(c, {ParallelMode::kGalaxy, 0});
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.seq_scatter_list, (Ints{20, 12}));
  EXPECT_TRUE(r.warnings.empty());
}

TEST(ValidateParallel, WorldInferredFromTheListsMustAgree) {
  GalaxyConfig c = named();
  c.tp_num_attention_heads_list = {4, 4, 4};
  c.tp_intermediate_size_list = {1536, 1536};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kTP, 0),
                  "tp_intermediate_size_list = [1536, 1536] has 2 entries but "
                  "world size is 3 (one entry per rank); the world size comes "
                  "from tp_num_attention_heads_list");
  c.tp_intermediate_size_list = {1024, 1024, 1024};
  EXPECT_EQ(resolved(c, {ParallelMode::kTP, 0}).world_size, 3);
}

TEST(ValidateParallel, WorldSizeKeyAgainstLists) {
  GalaxyConfig c = named();
  c.world_size = 4;
  c.seq_scatter_list = {16, 16};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kSP, 0),
                  "seq_scatter_list = [16, 16] has 2 entries but world size "
                  "is 4 (one entry per rank); the world size comes from "
                  "world_size");
}

TEST(ValidateParallel, CommandLineOverridesFileWithAWarning) {
  GalaxyConfig c = named();
  c.parallel_mode = ParallelMode::kTP;
  c.world_size = 2;
  GalaxyConfig r = resolved(c, {ParallelMode::kSP, 4});
  EXPECT_EQ(r.parallel_mode, ParallelMode::kSP);
  EXPECT_EQ(r.world_size, 4);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_CONTAINS(r.warnings[0], "parallel_mode \"tp\" in p.json is "
                                 "overridden by the command line (sp)");
  EXPECT_CONTAINS(r.warnings[1], "world_size = 2 in p.json is overridden by "
                                 "the command line (4)");
  // Without a command-line choice the file's mode and world stand.
  r = resolved(c, {});
  EXPECT_EQ(r.parallel_mode, ParallelMode::kTP);
  EXPECT_EQ(r.world_size, 2);
}

TEST(ValidateParallel, AWorldSizeIsNeeded) {
  EXPECT_CONTAINS(errorOf(named(), ParallelMode::kTP, 0),
                  "parallel_mode \"tp\" needs a world size: pass --world N, "
                  "set world_size, or give tp_num_attention_heads_list or "
                  "tp_intermediate_size_list");
  absl::Status s = validate(named(), ParallelChoice{ParallelMode::kDP, -2});
  EXPECT_CONTAINS(s.message(), "world size -2");
  GalaxyConfig c = named();
  c.world_size = -1;
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kDP, 0),
                  "world_size = -1 must be positive");
}

TEST(ValidateParallel, SerialIsOneRank) {
  EXPECT_CONTAINS(errorOf(named(), ParallelMode::kSerial, 2),
                  "parallel_mode is \"serial\" (one rank) but the command "
                  "line asks for world size 2");
  EXPECT_EQ(resolved(named(), {ParallelMode::kSerial, 1}).world_size, 1);
}

TEST(ValidateParallel, UnusedListsAreClearedWithAWarning) {
  GalaxyConfig c = named();
  c.seq_scatter_list = {16, 16};
  c.pp_microbatch_list = {2, 2};
  c.num_microbatches = 2;
  GalaxyConfig r = resolved(c, {ParallelMode::kTP, 2});
  EXPECT_TRUE(r.seq_scatter_list.empty());
  EXPECT_TRUE(r.pp_microbatch_list.empty());
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_CONTAINS(r.warnings[0],
                  "seq_scatter_list in p.json is not used in tp mode; ignored");
  EXPECT_CONTAINS(r.warnings[1], "pp_microbatch_list in p.json is not used");
}

TEST(ValidateParallel, RegionMethods) {
  GalaxyConfig c = named();
  c.con_parallel_method = BlockMethod::kTP;
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kGalaxy, 2),
                  "con_parallel_method = \"TP\" is not supported; expected "
                  "\"None\" or \"SP\" (CON blocks are elementwise+LayerNorm: "
                  "shard them by sequence)");
  c = named();
  c.att_parallel_method = BlockMethod::kNone;
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kGalaxy, 2),
                  "att_parallel_method = \"None\" is not supported; expected "
                  "\"TP\" or \"SP\"");

  auto methods = [](ParallelMode m) {
    GalaxyConfig g;
    g.parallel_mode = m;
    g.mlp_parallel_method = BlockMethod::kSP;
    RegionMethods r = regionMethods(g);
    return std::vector<BlockMethod>{r.att, r.con, r.mlp};
  };
  using B = BlockMethod;
  EXPECT_EQ(methods(ParallelMode::kTP),
            (std::vector{B::kTP, B::kNone, B::kTP}));
  EXPECT_EQ(methods(ParallelMode::kSP), (std::vector{B::kSP, B::kSP, B::kSP}));
  EXPECT_EQ(methods(ParallelMode::kGalaxy),
            (std::vector{B::kTP, B::kSP, B::kSP}));
  EXPECT_EQ(methods(ParallelMode::kDP),
            (std::vector{B::kNone, B::kNone, B::kNone}));
}

TEST(ValidateParallel, GalaxyListsFollowTheMethods) {
  // Galaxy2 (MLP SP) splits no MLP columns; pure-TP regions split no sequence.
  GalaxyConfig c = named();
  c.mlp_parallel_method = BlockMethod::kSP;
  GalaxyConfig r = resolved(c, {ParallelMode::kGalaxy, 2});
  EXPECT_EQ(r.tp_num_attention_heads_list, (Ints{6, 6}));
  EXPECT_EQ(r.seq_scatter_list, (Ints{16, 16}));
  EXPECT_TRUE(r.tp_intermediate_size_list.empty());
  c = named();
  c.con_parallel_method = BlockMethod::kNone;
  r = resolved(c, {ParallelMode::kGalaxy, 2});
  EXPECT_TRUE(r.seq_scatter_list.empty());
  EXPECT_EQ(r.tp_intermediate_size_list, (Ints{1536, 1536}));
  c = named();
  c.seq_scatter_list = {16, 15};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kGalaxy, 2),
                  "seq_scatter_list = [16, 15] sums to 31 but pad_size is 32");
}

TEST(ValidateParallel, PipelineMicrobatches) {
  GalaxyConfig c = named();
  c.num_microbatches = 2;
  c.pp_microbatch_list = {1, 2, 1};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kPP, 2),
                  "pp_microbatch_list = [1, 2, 1] has 3 entries but "
                  "num_microbatches is 2 (one entry per microbatch)");
  c.pp_microbatch_list = {3, 0};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kPP, 2),
                  "pp_microbatch_list = [3, 0] gives microbatch 1 0 samples");
  c.pp_microbatch_list = {1, 1};
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kPP, 2),
                  "pp_microbatch_list = [1, 1] sums to 2 but batch_size is 4");
  c.pp_microbatch_list = {};
  c.num_microbatches = 8;
  EXPECT_CONTAINS(errorOf(c, ParallelMode::kPP, 2),
                  "batch_size = 4 cannot be split over 8 microbatches");
  c.num_microbatches = 3;
  EXPECT_EQ(resolved(c, {ParallelMode::kPP, 2}).pp_microbatch_list,
            (Ints{2, 1, 1}));
}

} // namespace
} // namespace galaxy::config
