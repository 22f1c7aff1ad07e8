// Tile-level communication overlap (config key comm_overlap_tiles): a
// collective that follows a GEMM, or precedes GEMMs, runs in batch tiles so
// that tile t's communication overlaps tile t+1's GEMM on galaxy-run's
// communication thread (runtime/exec/comm_overlap.h).
//
// Tiles split dim 0, the batch: a slab of whole batch items is contiguous in
// the full tensor [B, S, H] and in its sequence shard [B, S/n, H] alike, so
// every tile is a plain view of a buffer (plan.proto's Instr.tile). Two
// patterns are tiled, both with collectives over a dim other than 0:
//  - a reduce_scatter or all_reduce whose input is computed row by row by a
//    linear (row-parallel GEMM), or by a tree of linears, adds and
//    to_partial pads (the backward's input gradient plus the residual's),
//    each result's only use inside the tree: emitted as tree_0, coll_0,
//    tree_1, coll_1, ... at the collective's place (pure ops between the
//    tree's ops and the collective are emitted before it, as they were);
//  - an all_gather whose result feeds linears as their input (column-
//    parallel GEMM): all_gather_0 .. all_gather_{T-1} at its place, and each
//    such linear as linear_0 .. linear_{T-1} at its own place; its other
//    users read the whole result (galaxy-run waits for every tile there).
// A collective with a GEMM between it and its result's first use in the
// lowering's order is already behind computation and stays whole.
// Every element is computed by the same kernel from the same operands; only
// the GEMMs' row counts change, which may change their rounding (hence
// opt-in).
#pragma once

#include <cstdint>
#include <vector>

#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace galaxy {

// One instruction to emit: `op` whole (count == 0), or rows [begin, begin +
// count) of dim 0 of its output 0 and of the operands at `inputs`.
struct TileStep {
  mlir::Operation *op;
  int64_t begin = 0, count = 0;
  std::vector<int32_t> inputs = {};
  bool tiled() const { return count > 0; }
};

// The lowering order `order` with the patterns above tiled into `tiles` batch
// tiles (at most the batch's rows; even, remainder to the first tiles);
// `emits(op)` tells which ops become an instruction (the others, such as
// parameters, are passed through whole). tiles <= 1 returns `order` whole.
std::vector<TileStep>
tileForOverlap(const std::vector<mlir::Operation *> &order, int64_t tiles,
               llvm::function_ref<bool(mlir::Operation *)> emits);

} // namespace galaxy
