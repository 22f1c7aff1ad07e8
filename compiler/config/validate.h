// Value checks, and resolving a config against the parallel mode and world
// size chosen on the galaxyc command line.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// The method each region runs under the config's parallel_mode: serial, dp
// and pp replicate all three (None); tp is TP/None/TP; sp is SP/SP/SP; galaxy
// takes att/con/mlp_parallel_method from the config.
struct RegionMethods {
  BlockMethod att, con, mlp;
};
RegionMethods regionMethods(const GalaxyConfig &c);

// The PEFT method the flags select (none set = full); error when two are set.
absl::StatusOr<PeftMethod> peftMethod(const GalaxyConfig &c);

// Checks every value and returns the config the compiler should use:
// parallel_mode and world_size (>= 1) set from `choice`; the mode's split
// lists filled (an even split, see evenSplit, when the file gives none) and
// checked (one entry per rank, each >= 1, summing to their total); lists the
// mode does not use cleared with a warning; pp_microbatch_list filled in pp
// mode; full_model true exactly when no other PEFT method is on. Errors are
// InvalidArgument and name the key, the value and what was expected.
absl::StatusOr<GalaxyConfig> resolveConfig(const GalaxyConfig &c,
                                           const ParallelChoice &choice);

// resolveConfig(c, choice).status().
absl::Status validate(const GalaxyConfig &c, const ParallelChoice &choice);
// `world` 0 = infer it (config world_size, else the mode's lists).
absl::Status validate(const GalaxyConfig &c, ParallelMode mode, int world);

} // namespace galaxy::config
