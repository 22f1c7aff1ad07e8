// galaxy-run's path for pipeline plans (Plan.pipeline.num_stages > 0): joins
// the world, splits the stage groups and trains / evaluates / saves with the
// pipeline driver (runtime/exec/pipeline_driver.h).
#pragma once

#include <string>

#include "runtime/exec/launch.h"
#include "runtime/plan/plan.pb.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {

// Runs this rank's stage plan (read from `planFile`); returns the exit code
// or throws Exit like the SPMD path.
int runPipelineRank(Args args, const rt::LaunchInfo &launch,
                    const std::string &planFile, plan::Plan plan);

} // namespace galaxy::run
