// Pipeline configs (parallel_mode pp, pp+MODE): one compile per stage and
// microbatch size, lowered into one plan per world rank, and the reports
// galaxyc prints about them (schedule timeline, activation memory per stage).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/Pipeline.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy {

struct PipelineCompile {
  // Per stage, its module after `stopAfter` for the first microbatch size.
  std::vector<mlir::OwningOpRef<mlir::ModuleOp>> stageModules;
  // By world rank (stage * group size + group rank); empty unless lowered.
  std::vector<plan::Plan> plans;
};

// Compiles every stage; with `lower` (stopAfter must be "partition") also
// lowers every (stage, group rank) to its plan.
absl::StatusOr<PipelineCompile> compilePipeline(mlir::MLIRContext &ctx,
                                                const config::GalaxyConfig &cfg,
                                                const std::string &stopAfter,
                                                bool lower);

// "// stage 1 of 2: layers [1, 3) on world ranks 2..3; recv pp.in.0
// [4x32x64] from stage 0; send ..." — printed above each stage's IR.
std::string stageBanner(const config::GalaxyConfig &cfg, int stage,
                        mlir::ModuleOp module);

// The schedule as a per-stage timeline (F/B slots and bubbles), its bubble
// fraction against (p-1)/m, and each stage's activation memory under gpipe
// and 1f1b (stash slots x slot bytes + arena), from rank-0-of-stage plans.
std::string pipelineReport(const config::GalaxyConfig &cfg,
                           const std::vector<plan::Plan> &plans);

} // namespace galaxy
