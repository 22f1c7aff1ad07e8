// One rank's work in a partitioned module, block by block, from the ops' own
// cost rules (profile::costOf): the numbers the cost model turns into time.
#pragma once

#include <map>
#include <string>

#include "mlir/IR/BuiltinOps.h"

namespace galaxy::planner {

// What one rank does in one part of a step. Doubles: a 70B layer's FLOPs
// times microbatches and layers stay exact enough and never wrap.
struct Work {
  double gemmFlops = 0;  // ops with multiply-accumulates (linear, matmul)
  double otherFlops = 0; // every other op, by FLOPs ...
  double otherBytes = 0; // ... and by the bytes it reads and writes
  double optFlops = 0, optBytes = 0; // optimizer updates (once per step)
  // Collectives by ring cost: all_reduce moves 2(W-1)/W of its bytes in
  // 2(W-1) steps; all_gather / reduce_scatter (W-1)/W in W-1.
  double reduceCount = 0, reduceBytes = 0;
  double gatherCount = 0, gatherBytes = 0;

  Work &operator+=(const Work &o);
  Work scaled(double k) const;
};
Work operator+(Work a, const Work &b);
Work operator-(Work a, const Work &b);

// Per block of one rank: "layer.att" (summed over every layer; divide by the
// layer count for one layer), "embedding", "head", ... `forwardOnly` walks
// @forward (the forward latency objective), else @train_step (a training
// step; @forward when the module has none).
std::map<std::string, Work> walkRank(mlir::ModuleOp module, int rank,
                                     bool forwardOnly);

// The sum of a walk's blocks.
Work total(const std::map<std::string, Work> &blocks);

} // namespace galaxy::planner
