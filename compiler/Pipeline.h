// The compiler pipeline: config -> model IR -> annotate -> autodiff ->
// (partition)
// -> plan. galaxyc drives it; tests call it directly.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace galaxy {

// Pipeline stages in order; `--after=STAGE` stops after one of them.
const std::vector<std::string> &pipelineStages();

// Registers every dialect the pipeline produces on `ctx`.
void registerGalaxyDialects(mlir::MLIRContext &ctx);

// Builds the model for `cfg` and runs the passes up to and including
// `stopAfter`
// ("model", "annotate", "peft", "pipeline", "autodiff", "partition"). The
// module is verified after every stage; a failure carries the MLIR diagnostics
// in its message. For a pipeline config (parallel_mode pp): which stage to
// compile and for which microbatch size (rows). Ignored otherwise.
struct StageChoice {
  int stage = 0;
  int64_t rows = 0; // 0: the first microbatch's size
};

absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
compileToStage(mlir::MLIRContext &ctx, const config::GalaxyConfig &cfg,
               const std::string &stopAfter, StageChoice pipe = {});

// The distinct microbatch sizes of a pipeline config, in first-seen order.
std::vector<int64_t> microbatchSizes(const config::GalaxyConfig &cfg);

} // namespace galaxy
