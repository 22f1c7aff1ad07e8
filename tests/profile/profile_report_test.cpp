// The renderings: JSON keys and totals, the text layout and depth limit, and
// the op nodes' instruction indices that measured times will be merged through.
#include <set>

#include "compiler/profile/report.h"
#include "nlohmann/json.hpp"
#include "tests/profile/profile_util.h"

namespace galaxy::profile {
namespace {

using testing::compileAndProfile;
using testing::makeConfig;

const char *kSmall =
    R"({"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 32,
  "num_classes": 3, "batch_size": 2, "pad_size": 8, "seq_scatter_list": [5, 3],
  "tp_num_attention_heads_list": [1, 1], "tp_intermediate_size_list": [96, 32]})";

const testing::Compiled &galaxy2() {
  static const testing::Compiled c =
      compileAndProfile(makeConfig(kSmall, "galaxy", 2));
  return c;
}

void collectOps(const Node &n, std::vector<const Node *> &ops) {
  if (n.kind == "op")
    ops.push_back(&n);
  for (const Node &c : n.children)
    collectOps(c, ops);
}

// Each plan instruction belongs to exactly one op node of its kind.
TEST(ProfileReport, OpNodesNameEveryPlanInstructionOnce) {
  const auto &[prof, plans] = galaxy2();
  for (const RankProfile &r : prof.ranks) {
    const plan::Program *prog = nullptr;
    for (const plan::Program &p : plans[r.rank].programs())
      if (p.name() == "train_step")
        prog = &p;
    ASSERT_NE(prog, nullptr);
    std::vector<const Node *> ops;
    collectOps(r.tree, ops);
    std::set<int> seen;
    for (const Node *op : ops)
      for (int i : op->instrs) {
        ASSERT_LT(i, prog->instrs_size());
        EXPECT_TRUE(seen.insert(i).second) << "instruction " << i << " twice";
        const std::string &k = prog->instrs(i).kernel();
        if (op->name == "to_partial")
          EXPECT_TRUE(k == "scale" || k == "pad") << k;
        else
          EXPECT_EQ(k, op->name) << "instruction " << i;
      }
    EXPECT_EQ(int(seen.size()), prog->instrs_size());
    EXPECT_EQ(r.fig.ops, prog->instrs_size());
  }
}

TEST(ProfileReport, JsonHasTheDocumentedKeys) {
  const Profile &p = galaxy2().prof;
  auto j = nlohmann::json::parse(profileJson(p));
  ASSERT_EQ(j["ranks"].size(), 2u);
  for (int r = 0; r < 2; ++r) {
    const auto &jr = j["ranks"][r];
    EXPECT_EQ(jr["rank"], r);
    EXPECT_EQ(jr["params"]["total"], p.ranks[r].fig.params);
    EXPECT_EQ(jr["params"]["trainable"], p.ranks[r].fig.trainable);
    EXPECT_EQ(jr["forward"]["macs"], p.ranks[r].fig.fwdMacs);
    EXPECT_EQ(jr["forward"]["flops"], p.ranks[r].fig.fwdFlops);
    EXPECT_EQ(jr["backward"]["flops"], p.ranks[r].fig.bwdFlops);
    EXPECT_EQ(jr["optimizer"]["flops"], p.ranks[r].fig.optFlops);
    EXPECT_EQ(jr["comm"]["bytes"], p.ranks[r].fig.commBytes);
    EXPECT_FALSE(jr["comm"]["ops"].empty());
    for (const char *k :
         {"weights", "gradients", "gradients_live", "optimizer_state", "inputs",
          "activation_arena", "peak"})
      EXPECT_TRUE(jr["memory"].contains(k)) << k;
    ASSERT_EQ(jr["tree"].size(), 1u);
    EXPECT_EQ(jr["tree"][0]["path"], "model");
    EXPECT_EQ(jr["tree"][0]["children"][1]["path"], "model/layer.0");
  }
  EXPECT_FALSE(j["total"].contains("rank"));
  EXPECT_EQ(j["total"]["params"]["total"], p.total.fig.params);
  EXPECT_EQ(j["total"]["forward"]["flops"],
            p.ranks[0].fig.fwdFlops + p.ranks[1].fig.fwdFlops);
  EXPECT_FALSE(j["conventions"].empty());
}

TEST(ProfileReport, TextShowsSummaryAggregateAndTree) {
  const Profile &p = galaxy2().prof;
  ReportOptions o;
  o.title = "small (galaxy, world 2)";
  std::string all = profileText(p, o);
  for (const char *s :
       {"Counting rules", "rank 0", "rank 1", "total",
        "comm reduce_scatter (fwd)", "memory: peak", "Aggregated profile",
        "depth 3:", "layer.1:", "    att:", "      linear:"})
    EXPECT_NE(all.find(s), std::string::npos) << s;
  o.depth = 1;
  std::string shallow = profileText(p, o);
  EXPECT_NE(shallow.find("  layer.1:"), std::string::npos);
  EXPECT_EQ(shallow.find("    att:"), std::string::npos);
  EXPECT_EQ(shallow.find("depth 2:"), std::string::npos);
}

TEST(ProfileReport, PlanFromAnotherModuleIsRefused) {
  const auto &[prof, plans] = galaxy2();
  mlir::MLIRContext ctx;
  auto serial =
      compileToStage(ctx, makeConfig(kSmall, "serial", 1), "partition");
  ASSERT_TRUE(serial.ok());
  plan::Plan wrong = plans[0];
  wrong.mutable_programs(0)->mutable_instrs()->RemoveLast();
  auto r = profileRank(**serial, wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("lowered from this module"),
            std::string::npos)
      << r.status();
}

} // namespace
} // namespace galaxy::profile
