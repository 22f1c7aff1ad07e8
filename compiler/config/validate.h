// Checking a config: the per-key value checks (validate.cc), and
// resolveConfig, which runs them and then resolves the config against the
// parallel mode and world size chosen on the galaxyc command line
// (resolve_parallel.h; what each mode means is parallel_modes.h).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "compiler/config/parallel_modes.h"
#include "compiler/config/resolve_parallel.h"

namespace galaxy::config {

// The PEFT method the flags select (none set = full); error when two are set.
absl::StatusOr<PeftMethod> peftMethod(const GalaxyConfig &c);

// Every key's value on its own and against the keys it depends on (model
// sizes, training, the PEFT method's values, region methods); nothing that
// depends on the parallel mode or world. Returns the PEFT method.
absl::StatusOr<PeftMethod> checkValues(const GalaxyConfig &c);

// Checks every value and returns the config the compiler should use:
// checkValues, then resolveParallel (parallel_mode and world_size set from
// `choice`, split lists filled and checked, unused lists cleared with a
// warning, pp_microbatch_list filled in pp mode); full_model true exactly
// when no other PEFT method is on. Errors are InvalidArgument and name the
// key, the value and what was expected.
absl::StatusOr<GalaxyConfig> resolveConfig(const GalaxyConfig &c,
                                           const ParallelChoice &choice);

// resolveConfig(c, choice).status().
absl::Status validate(const GalaxyConfig &c, const ParallelChoice &choice);
// `world` 0 = infer it (config world_size, else the mode's lists).
absl::Status validate(const GalaxyConfig &c, ParallelMode mode, int world);

} // namespace galaxy::config
