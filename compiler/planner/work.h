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
  double gemmFlops = 0; // ops with multiply-accumulates (linear, matmul)
  // Σ flops / rows over those GEMMs (rows: their activation operand's rows,
  // M), which sets their speed (Device.gemm_at_rows): gemmRows() is their
  // FLOP-weighted (harmonic) row count. Per op it is affine in a rank's share
  // both where the share splits the columns (TP: flops ∝ share, rows fixed)
  // and where it splits the rows (SP: flops and rows ∝ share), as the probes
  // (probe.h) need; scales with the FLOPs, and a microbatch's work multiplies
  // it back (atRowsOver).
  double gemmFlopsPerRow = 0;
  double otherFlops = 0;             // every other op, by FLOPs ...
  double otherBytes = 0;             // ... and by the bytes it reads and writes
  double optFlops = 0, optBytes = 0; // optimizer updates (once per step)
  // Collectives by ring cost: all_reduce moves 2(W-1)/W of its bytes in
  // 2(W-1) steps; all_gather / reduce_scatter (W-1)/W in W-1.
  double reduceCount = 0, reduceBytes = 0;
  double gatherCount = 0, gatherBytes = 0;
  // The small gradient all-reduces the lowering coalesces
  // (compiler/CoalescePolicy.h), not in reduceCount / reduceBytes:
  // `coalescedCount` of them, `coalescedBytes` in all, run as
  // `coalescedGroups` collectives (1, in block kCoalescedBlock, where a
  // function has any: one per step however many layers there are).
  double coalescedCount = 0, coalescedBytes = 0, coalescedGroups = 0;

  Work &operator+=(const Work &o);
  Work scaled(double k) const;
  // The GEMMs' FLOP-weighted row count (0: no GEMMs or rows unknown).
  double gemmRows() const {
    return gemmFlopsPerRow > 0 ? gemmFlops / gemmFlopsPerRow : 0;
  }
  // The same work with its GEMMs at 1/k of their rows (a microbatch of 1/k
  // of the batch; FLOPs untouched: scale them apart).
  Work atRowsOver(double k) const {
    Work w = *this;
    w.gemmFlopsPerRow *= k;
    return w;
  }
};
Work operator+(Work a, const Work &b);
Work operator-(Work a, const Work &b);

// The block that holds the one collective a function's coalesced all-reduces
// run as (Work::coalescedGroups; their bytes stay in their own blocks).
inline constexpr const char *kCoalescedBlock = "coalesced";

// Per block of one rank: "layer.att" (summed over every layer; divide by the
// layer count for one layer), "embedding", "head", ... `forwardOnly` walks
// @forward (the forward latency objective), else @train_step (a training
// step; @forward when the module has none).
std::map<std::string, Work> walkRank(mlir::ModuleOp module, int rank,
                                     bool forwardOnly);
// The same for the function named `name` (a pipeline stage's @update); empty
// when the module has none.
std::map<std::string, Work> walkFunction(mlir::ModuleOp module,
                                         llvm::StringRef name, int rank);

// The sum of a walk's blocks.
Work total(const std::map<std::string, Work> &blocks);

} // namespace galaxy::planner
