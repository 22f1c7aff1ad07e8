// Building a registered model's serial graph (models/registry.h) as galaxy
// IR. The compiler calls buildModel; each model folder provides one builder
// function, listed in build.cpp.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace galaxy::models {

struct BuildOptions {
  // Batch rows of the built @forward; 0 = the config's batch_size (a
  // pipeline stage program sees one microbatch).
  int64_t batchRows = 0;
};

// @forward of `cfg.model_type` with the inputs its spec declares, and the
// model's declarations the passes read stamped on the module (PEFT targets,
// layer prefixes, adapter sites, task head, layer count: see
// galaxy/GalaxyDialect.h). NotFound when the model type has no builder.
absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildModel(mlir::MLIRContext &ctx, const config::GalaxyConfig &cfg,
           const BuildOptions &opts = {});

} // namespace galaxy::models
