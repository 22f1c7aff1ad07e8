// Lowering: a module holding @forward (and @train_step after autodiff) becomes
// one protobuf plan: buffers with arena offsets from liveness, the parameter
// table, and one program per function.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/CommTiling.h"
#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "runtime/plan/plan.pb.h"
#include "llvm/ADT/DenseSet.h"

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

// Every rank of an SPMD world, lowered in parallel on the module's context
// threads: the module is only read and each rank's lowering owns its state, so
// the plans equal lowerToPlan's rank by rank. The first failing rank's error.
absl::StatusOr<std::vector<plan::Plan>>
lowerAllRanks(mlir::ModuleOp module, const config::GalaxyConfig &cfg,
              int world);

// The order the lowering emits the ops of a function body in (collectives as
// early, their first uses as late as the dataflow allows; LowerToPlan.cpp),
// `dead` ops left out. Instruction k of a program is the k-th of these that
// emits one (not a ParamOp, not an SGD step fused into its gradient), in a
// plan compiled with comm_overlap_tiles = `tiles` (before the tiling).
std::vector<mlir::Operation *>
loweringOrder(mlir::Block &body, const llvm::DenseSet<mlir::Operation *> &dead,
              int64_t tiles = 1);
// The same with comm_overlap_tiles = `tiles` applied (CommTiling.h): one step
// per instruction, so instruction k is the k-th step whose op emits one; a
// tiled op appears once per tile (begin 0 first).
std::vector<TileStep>
loweringSteps(mlir::Block &body, const llvm::DenseSet<mlir::Operation *> &dead,
              int64_t tiles);
// The same, handing each plan to `consume` on the thread that lowered it as
// soon as it is lowered (ranks in any order, several at once), so a caller
// that only writes plans never holds them all. The plan lives on a protobuf
// arena freed when `consume` returns: moving it out copies it. The first
// error of a lowering or of `consume`.
absl::Status
lowerEachRank(mlir::ModuleOp module, const config::GalaxyConfig &cfg, int world,
              const std::function<absl::Status(plan::Plan &&)> &consume);

// A pipeline stage compiled for one microbatch size (rows).
struct StageModule {
  int64_t rows;
  mlir::ModuleOp module;
};
// Lowers one stage's modules (one per distinct microbatch size) into one plan:
// per size "train_fwd.b<rows>" / "train_bwd.b<rows>" (the train step split at
// the backward pass; what the backward reads from the forward is stashed per
// microbatch) and "eval_step.b<rows>", plus "update" once. `info` is copied
// into Plan.pipeline with stash_slot_bytes filled in.
absl::StatusOr<plan::Plan>
lowerPipelineStage(const std::vector<StageModule> &modules,
                   const config::GalaxyConfig &cfg, const LowerOptions &opts,
                   const plan::Pipeline &info);

// Arena bytes needed when each value gets its own buffer vs. with liveness
// reuse.
struct ArenaReport {
  int64_t arenaBytes = 0, unsharedBytes = 0;
};
ArenaReport arenaReport(const plan::Plan &p);

} // namespace galaxy
