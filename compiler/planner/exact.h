// The chosen candidate compiled for real: its plans, and its predicted time
// and memory per rank read from the compiled modules (every op's cost rule
// at its real local shapes) and the plans' sizes.
#pragma once

#include "absl/status/statusor.h"
#include "compiler/planner/search.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::planner {

struct Compiled {
  std::vector<plan::Plan> plans;
  double time = 0;
  std::vector<RankTime> ranks;
};

// `cfg` resolved. Memory is PlanMemory.total of each plan.
absl::StatusOr<Compiled> compileExact(const SearchInput &in,
                                      const config::GalaxyConfig &cfg);

} // namespace galaxy::planner
