// Renderings of a Profile: DeepSpeed flops-profiler style text for people, JSON
// for tools (and for merging measured times later, see docs/profiler.md).
#pragma once

#include <string>

#include "compiler/profile/profile.h"

namespace galaxy::profile {

struct ReportOptions {
  std::string title;  // e.g. "configs/bert/galaxy/full.json (galaxy, world 2)"
  int depth = -1;     // deepest tree level shown (0 = model only); -1 = all
  int topModules = 3; // entries per depth in the aggregated profile
};

// Summary per rank and in total, the aggregated profile by depth, and the
// detailed tree of every rank with each node's share of that rank's totals.
std::string profileText(const Profile &p, const ReportOptions &opts);

// {"conventions": [...], "ranks": [{"rank": 0, "params": {...}, "forward":
// {...},
//  "backward": {...}, "optimizer": {...}, "comm": {...}, "memory": {...},
//  "tree": [...]}, ...], "total": {same keys}}; the full tree whatever the
//  depth.
std::string profileJson(const Profile &p, int indent = 2);

} // namespace galaxy::profile
