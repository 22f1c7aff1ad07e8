// galaxy-run --profile reports: what every rank measured, gathered, printed
// (and written) by rank 0.
#pragma once

#include <cstdint>

#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/pipeline_driver.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {

// SPMD plans: every train_step instruction's time per region (docs/profiler.md)
// over `measuredS` seconds of measured steps; --profile-json (merged into
// --profile-static's tree) and --profile-svg.
void reportProfile(const rt::Executor &ex, const Args &args,
                   comm::Communicator *comm, double measuredS, bool lead);

// Pipeline plans: one line per world rank with its stage, busy and idle time,
// step time and activation memory.
void reportPipelineProfile(const rt::PipelineDriver &driver,
                           const rt::Executor &ex, comm::Communicator *world,
                           double measuredS, int64_t measuredSteps,
                           bool warmUpDropped, bool lead);

} // namespace galaxy::run
