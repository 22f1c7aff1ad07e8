// Which all-reduces the lowering coalesces (plan Instr.coalesce): the rule
// compiler/LowerToPlan.cpp (sinkSmallReducedUpdates) sinks by and the planner
// (compiler/planner/work.cc) prices by, so that --auto charges the run of
// them one collective's latency, as galaxy-run runs it on the host.
//
// A candidate is the all-reduce an sgd/adamw update reads as its gradient
// when that update is its only reader and it is a small f32 tensor: the
// CON blocks' layer-norm weights and biases in Galaxy / SP modes, a data-
// parallel plan's biases and small weights. The lowering moves such pairs to
// the end of the function and emits the all-reduces one after another; it
// keeps a pair in place only when an op after it conflicts with the move:
// an SPMD @train_step has no such op (planner_test checks the planner's
// counts against compiled plans), a pipeline stage's @update zeroes each
// gradient after its update, so none there is coalesced (the planner's
// updateAlone, compiler/planner/search.h).
#pragma once

#include <cstdint>

#include "galaxy/GalaxyDialect.h"

namespace galaxy {

// Gradients above this many bytes stay where they are: each sunk all-reduce
// stays live to the end of the step, and a data-parallel plan's big
// gradients would keep the whole model's gradient in memory.
inline constexpr int64_t kCoalesceMaxBytes = 64 << 10;

// The all-reduce `update` reads as its gradient when it is a coalescing
// candidate; null otherwise. (An sgd update fused into its gradient op,
// sgdFusedInto, reads a linear_weight_grad or embedding_grad, never an
// all-reduce: it is no candidate either.)
inline AllReduceOp coalescableReduceOf(mlir::Operation *update) {
  if (!mlir::isa<SgdUpdateOp, AdamwUpdateOp>(update))
    return {};
  auto ar = update->getOperand(1).getDefiningOp<AllReduceOp>();
  if (!ar || !ar->hasOneUse())
    return {};
  auto type = mlir::dyn_cast<mlir::RankedTensorType>(ar.getType());
  if (!type || !type.hasStaticShape() || !type.getElementType().isF32() ||
      type.getNumElements() * 4 > kCoalesceMaxBytes)
    return {};
  return ar;
}

// Whether `op` is such an all-reduce (asked from its side).
inline bool isCoalescableReduce(mlir::Operation *op) {
  auto ar = mlir::dyn_cast<AllReduceOp>(op);
  return ar && ar->hasOneUse() && coalescableReduceOf(*ar->user_begin()) == ar;
}

} // namespace galaxy
