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
// ("model", "annotate", "autodiff"). The module is verified after every stage;
// a failure carries the MLIR diagnostics in its message.
absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
compileToStage(mlir::MLIRContext &ctx, const config::GalaxyConfig &cfg,
               const std::string &stopAfter);

} // namespace galaxy
