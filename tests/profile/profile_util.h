// Compiles a config to its partitioned module and per-rank plans, then profiles
// it.
#pragma once

#include <gtest/gtest.h>

#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "compiler/profile/profile.h"

namespace galaxy::profile::testing {

// `json` holds the model and split keys; mode and world come from the caller.
inline config::GalaxyConfig makeConfig(const std::string &json,
                                       const std::string &mode, int world) {
  auto c = config::parseConfig(json, "test");
  EXPECT_TRUE(c.ok()) << c.status();
  config::ParallelChoice choice;
  choice.mode = *config::parseParallelMode(mode);
  choice.world = world;
  auto r = config::resolveConfig(*c, choice);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

struct Compiled {
  Profile prof;
  std::vector<plan::Plan> plans;
};

inline Compiled compileAndProfile(const config::GalaxyConfig &cfg) {
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, cfg, "partition");
  EXPECT_TRUE(module.ok()) << module.status();
  std::vector<plan::Plan> plans;
  int world = std::max(cfg.world_size, 1);
  for (int r = 0; r < world; ++r) {
    auto p = lowerToPlan(**module, cfg, {r, world});
    EXPECT_TRUE(p.ok()) << p.status();
    plans.push_back(*p);
  }
  auto prof = profileModule(**module, plans);
  EXPECT_TRUE(prof.ok()) << prof.status();
  return {prof.ok() ? *prof : Profile{}, plans};
}

inline Profile profileOf(const config::GalaxyConfig &cfg) {
  return compileAndProfile(cfg).prof;
}

// The figures of one node, e.g. at({"layer.0", "att"}); fails the test when
// absent.
inline Figures at(const RankProfile &r, const std::vector<std::string> &path) {
  const Node *n = findNode(r.tree, path);
  EXPECT_NE(n, nullptr) << "no node " << ::testing::PrintToString(path);
  return n ? n->fig : Figures{};
}

} // namespace galaxy::profile::testing
