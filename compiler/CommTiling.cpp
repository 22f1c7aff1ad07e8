#include "compiler/CommTiling.h"

#include <algorithm>

#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;

namespace galaxy {
namespace {

// Rows of `v`'s dim 0 on every rank (0 when dim 0 is sharded, or `v` is no
// tensor of rank >= 2): the tiles must be the same batch items everywhere.
int64_t batchRows(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() < 2 || t.isDynamicDim(0))
    return 0;
  Layout l = layoutOf(v);
  if (l.kind == Layout::S && l.dim == 0)
    return 0;
  return t.getDimSize(0);
}

// The rows of a collective over a dim other than 0 (an all_reduce has none),
// whose input and result both keep every row; 0 when it cannot be tiled.
int64_t collectiveRows(Operation *op) {
  int64_t dim;
  if (auto rs = dyn_cast<ReduceScatterOp>(op))
    dim = rs.getDim();
  else if (auto ag = dyn_cast<AllGatherOp>(op))
    dim = ag.getDim();
  else if (isa<AllReduceOp>(op))
    dim = -1;
  else
    return 0;
  const int64_t rows = batchRows(op->getOperand(0));
  if (dim == 0 || rows != batchRows(op->getResult(0)))
    return 0;
  return rows;
}

// A linear that reads rows of its input and writes the same rows of its
// result, `rows` of them.
bool rowLocalLinear(Operation *op, int64_t rows) {
  auto lin = dyn_cast_or_null<LinearOp>(op);
  return lin && rows > 0 && batchRows(lin.getInput()) == rows &&
         batchRows(lin.getResult()) == rows &&
         lin.getWeight() != lin.getInput();
}

} // namespace

std::vector<TileStep>
tileForOverlap(const std::vector<Operation *> &order, int64_t tiles,
               llvm::function_ref<bool(Operation *)> emits) {
  std::vector<TileStep> out;
  out.reserve(order.size());
  if (tiles <= 1) {
    for (Operation *op : order)
      out.push_back({op});
    return out;
  }
  // op -> its rows, for every op emitted in tiles; a row-parallel linear ->
  // the collective it is emitted with.
  llvm::DenseMap<Operation *, int64_t> rowsOf;
  llvm::DenseMap<Operation *, Operation *> pairedWith;
  Operation *prev = nullptr; // the last op that emits before the current one
  for (Operation *op : order) {
    if (!emits(op))
      continue;
    const int64_t rows = collectiveRows(op);
    if (rows > 0 && isa<ReduceScatterOp, AllReduceOp>(op)) {
      // Emitted right after its producer, so deferring the producer to it
      // moves the producer past nothing but non-emitting ops.
      Value in = op->getOperand(0);
      Operation *lin = in.getDefiningOp();
      if (lin == prev && in.hasOneUse() && rowLocalLinear(lin, rows)) {
        rowsOf[lin] = rowsOf[op] = rows;
        pairedWith[lin] = op;
      }
    } else if (rows > 0 && isa<AllGatherOp>(op)) {
      Value x = op->getResult(0);
      for (OpOperand &use : x.getUses()) {
        auto lin = dyn_cast<LinearOp>(use.getOwner());
        if (lin && use.getOperandNumber() == 0 && rowLocalLinear(lin, rows) &&
            lin.getBias() != x && !pairedWith.count(lin)) {
          rowsOf[lin] = rowsOf[op] = rows;
        }
      }
    }
    prev = op;
  }
  auto emitTiles = [&](Operation *op, Operation *with) {
    const int64_t rows = rowsOf.lookup(op);
    const int64_t n = std::min(tiles, rows);
    int64_t begin = 0;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t count = rows / n + (t < rows % n ? 1 : 0);
      out.push_back({op, begin, count});
      if (with)
        out.push_back({with, begin, count});
      begin += count;
    }
  };
  llvm::DenseSet<Operation *> pairedColl;
  for (auto &[lin, coll] : pairedWith)
    pairedColl.insert(coll);
  for (Operation *op : order) {
    if (pairedWith.count(op))
      continue; // emitted with its collective
    if (pairedColl.contains(op)) {
      emitTiles(op->getOperand(0).getDefiningOp(), op);
      continue;
    }
    if (rowsOf.count(op))
      emitTiles(op, nullptr);
    else
      out.push_back({op});
  }
  return out;
}

} // namespace galaxy
