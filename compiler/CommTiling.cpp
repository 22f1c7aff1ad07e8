#include "compiler/CommTiling.h"

#include <algorithm>

#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
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

// The operands of a tiled `op` that are tiled too (positions; every one an
// operand the instruction keeps, at the same position), or none when `op`
// cannot be computed row by row over `rows` rows.
std::vector<int32_t> rowOperands(Operation *op, int64_t rows) {
  if (isa<LinearOp>(op))
    return rowLocalLinear(op, rows) ? std::vector<int32_t>{0}
                                    : std::vector<int32_t>{};
  if (isa<AddOp>(op))
    return batchRows(op->getResult(0)) == rows &&
                   batchRows(op->getOperand(0)) == rows &&
                   batchRows(op->getOperand(1)) == rows
               ? std::vector<int32_t>{0, 1}
               : std::vector<int32_t>{};
  if (isa<ToPartialOp>(op))
    return batchRows(op->getResult(0)) == rows &&
                   batchRows(op->getOperand(0)) == rows
               ? std::vector<int32_t>{0}
               : std::vector<int32_t>{};
  return {};
}

// The tree computing `coll`'s input row by row, in `order`'s order, or empty:
// every op of it used once, inside the tree, and every op between its first
// and `coll` in the order either in the tree or pure (so the tree may move
// down to `coll`).
std::vector<Operation *> rowTree(Operation *coll, int64_t rows,
                                 const std::vector<Operation *> &order,
                                 size_t collAt) {
  llvm::DenseSet<Operation *> tree;
  std::vector<Value> pending{coll->getOperand(0)};
  while (!pending.empty()) {
    Value v = pending.back();
    pending.pop_back();
    Operation *def = v.getDefiningOp();
    if (!def || !v.hasOneUse() || tree.contains(def) ||
        rowOperands(def, rows).empty())
      continue;
    tree.insert(def);
    if (!isa<LinearOp>(def)) // a linear's input is read, not grown into
      pending.insert(pending.end(), def->operand_begin(), def->operand_end());
  }
  if (!tree.contains(coll->getOperand(0).getDefiningOp()))
    return {};
  std::vector<Operation *> ops;
  for (size_t i = collAt; i-- > 0 && ops.size() < tree.size();) {
    if (tree.contains(order[i]))
      ops.push_back(order[i]);
    else if (!isPure(order[i]))
      return {}; // would move a tree op past an effect
  }
  if (ops.size() != tree.size())
    return {};
  std::reverse(ops.begin(), ops.end());
  return ops;
}

// Whether a GEMM already runs between the collective at order[at] and the
// first use of its result: the lowering's order put independent work behind
// it (a backward reduce_scatter before the weight gradients), and tiles
// would only add collectives.
bool behindGemm(const std::vector<Operation *> &order, size_t at,
                llvm::function_ref<bool(Operation *)> emits) {
  Value result = order[at]->getResult(0);
  for (size_t j = at + 1; j < order.size(); ++j) {
    Operation *op = order[j];
    if (llvm::is_contained(op->getOperands(), result))
      return false;
    if (isa<LinearOp, LinearWeightGradOp, MatmulOp>(op) && emits(op))
      return true;
  }
  return false;
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
  // op -> its rows, for every op emitted in tiles; a collective -> the tree
  // computing its input (emitted with it, tile by tile).
  llvm::DenseMap<Operation *, int64_t> rowsOf;
  llvm::DenseMap<Operation *, std::vector<Operation *>> treeOf;
  llvm::DenseSet<Operation *> inTree;
  for (size_t i = 0; i < order.size(); ++i) {
    Operation *op = order[i];
    if (!emits(op))
      continue;
    const int64_t rows = collectiveRows(op);
    if (rows == 0 || behindGemm(order, i, emits))
      continue;
    if (isa<ReduceScatterOp, AllReduceOp>(op)) {
      std::vector<Operation *> tree = rowTree(op, rows, order, i);
      if (tree.empty() || llvm::any_of(tree, [&](Operation *t) {
            return inTree.contains(t) || !emits(t);
          }))
        continue;
      rowsOf[op] = rows;
      for (Operation *t : tree) {
        rowsOf[t] = rows;
        inTree.insert(t);
      }
      treeOf[op] = std::move(tree);
    } else if (isa<AllGatherOp>(op)) {
      Value x = op->getResult(0);
      for (OpOperand &use : x.getUses()) {
        auto lin = dyn_cast<LinearOp>(use.getOwner());
        if (lin && use.getOperandNumber() == 0 && lin.getBias() != x &&
            rowLocalLinear(lin, rows) && !inTree.contains(lin))
          rowsOf[lin] = rowsOf[op] = rows;
      }
    }
  }
  auto tileOf = [&](Operation *op, int64_t begin, int64_t count) {
    TileStep s{op, begin, count};
    s.inputs = isa<AllGatherOp, ReduceScatterOp, AllReduceOp>(op)
                   ? std::vector<int32_t>{0}
                   : rowOperands(op, rowsOf.lookup(op));
    return s;
  };
  for (Operation *op : order) {
    if (inTree.contains(op))
      continue; // emitted with its collective
    auto rows = rowsOf.find(op);
    if (rows == rowsOf.end()) {
      out.push_back({op});
      continue;
    }
    const int64_t n = std::min(tiles, rows->second);
    auto tree = treeOf.find(op);
    int64_t begin = 0;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t count = rows->second / n + (t < rows->second % n ? 1 : 0);
      if (tree != treeOf.end())
        for (Operation *u : tree->second)
          out.push_back(tileOf(u, begin, count));
      out.push_back(tileOf(op, begin, count));
      begin += count;
    }
  }
  return out;
}

} // namespace galaxy
