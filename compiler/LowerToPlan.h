// Lowering: a module holding @forward (and @train_step after autodiff) becomes
// one protobuf plan: buffers with arena offsets from liveness, the parameter
// table, and one program per function.
#pragma once

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy {

struct LowerOptions {
  int rank = 0;
  int world = 1;
};

// @forward lowers to program "eval_step" (outputs loss, logits) and
// @train_step to "train_step" (output loss).
absl::StatusOr<plan::Plan> lowerToPlan(mlir::ModuleOp module,
                                       const config::GalaxyConfig &cfg,
                                       const LowerOptions &opts);

// Arena bytes needed when each value gets its own buffer vs. with liveness
// reuse.
struct ArenaReport {
  int64_t arenaBytes = 0, unsharedBytes = 0;
};
ArenaReport arenaReport(const plan::Plan &p);

} // namespace galaxy
