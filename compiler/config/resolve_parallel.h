// Resolving a value-checked config against the parallel mode and world size
// chosen on the galaxyc command line: the mode, the world, the split lists
// and a pipeline's stages, group and microbatches.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

// What the command line chose. Given values override the config's
// parallel_mode / world_size (with a warning when the file named a different
// non-serial mode or a different world_size).
struct ParallelChoice {
  std::optional<ParallelMode> mode; // nullopt: the config's parallel_mode
  int world = 0; // 0: the config's world_size, else inferred from the lists
  // With mode pp: the stages' SPMD mode ("pp+tp" on the command line).
  ParallelMode groupMode = ParallelMode::kSerial;
};

// Sets parallel_mode (and pp_group_mode) and world_size (>= 1) from `choice`;
// fills the mode's split lists (an even split, see evenSplit, when the file
// gives none) and checks them (one entry per rank, each >= 1, summing to
// their total); clears the lists the mode does not use with a warning; in pp
// mode sets pp_group_size and fills pp_microbatch_list. Which lists a mode
// uses is splitsFor's (parallel_modes.h).
absl::Status resolveParallel(GalaxyConfig &c, const ParallelChoice &choice);

} // namespace galaxy::config
