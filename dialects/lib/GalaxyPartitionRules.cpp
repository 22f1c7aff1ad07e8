//===- GalaxyPartitionRules.cpp - how each op is partitioned --------------===//
//
// PartitionOpInterface: the default rule derived from the named dims, and the
// few ops whose rule is their own. The partition pass only walks the ops and
// offers them a PartitionContext (layouts, redistribution).
//
//===----------------------------------------------------------------------===//
#include "galaxy/GalaxyDialect.h"

#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace galaxy;

namespace {
bool isPartial(Value v) { return layoutOf(v).kind == Layout::P; }

// An op linear in its operands: partial operands flow through unreduced
// unless every operand and the result can share the result's sharding.
void partitionLinearInPartials(Operation *op, PartitionContext &ctx) {
  // A partial operand that was already reduced for another consumer is used
  // reduced: no second reduction of the same value.
  for (OpOperand &o : op->getOpOperands())
    if (isPartial(o.get()))
      if (Value r = ctx.reducedCopy(o.get()))
        o.set(r);
  Value result = op->getResult(0);
  Layout want = ctx.preferred(result, op);
  bool anyP = llvm::any_of(op->getOperands(), isPartial);
  bool allS =
      want.kind == Layout::S && llvm::all_of(op->getOperands(), [&](Value v) {
        return ctx.preferred(v, op).kind == Layout::S;
      });
  for (OpOperand &o : op->getOpOperands()) {
    Layout to = allS   ? ctx.preferred(o.get(), op)
                : anyP ? Layout::partial()
                       : Layout::replicated();
    o.set(ctx.convert(o.get(), to, op));
  }
  setLayout(result, allS   ? want
                    : anyP ? Layout::partial()
                           : Layout::replicated());
}
} // namespace

void galaxy::partitionByDims(Operation *op, PartitionContext &ctx) {
  if (op->hasTrait<LinearInPartials>())
    return partitionLinearInPartials(op, ctx);
  // Operands in their preferred layouts; a result keeps a sharded axis it
  // names, or is partial when a sharded axis was summed away.
  auto iface = cast<PartitionOpInterface>(op);
  llvm::StringSet<> operandSharded;
  for (OpOperand &o : op->getOpOperands()) {
    Layout to =
        iface.operandLayout(o.getOperandNumber(), ctx.preferred(o.get(), op));
    o.set(ctx.convert(o.get(), to, op));
    SmallVector<StringRef> names = dimNamesOf(o.get());
    if (to.kind == Layout::S && to.dim < int64_t(names.size()))
      operandSharded.insert(names[to.dim]);
  }
  for (Value r : op->getResults()) {
    Layout l = ctx.preferred(r, op);
    if (l.kind != Layout::S) {
      SmallVector<StringRef> names = dimNamesOf(r);
      for (const auto &s : operandSharded)
        if (!llvm::is_contained(names, s.getKey()))
          l = Layout::partial();
    }
    setLayout(r, l);
  }
}

namespace {
// Per-row positions [B] (take_token's indices) split as the rows of `rows`
// are (its dim 0, data parallel), else whole on every rank.
Layout rowsSplitOf(const Layout &rows) {
  if (rows.kind == Layout::S && rows.dim == 0)
    return rows;
  return Layout::replicated();
}
} // namespace

// The selected token lives on one rank of a sequence split: gather first.
// partitionByDims converts the operands in order, so when it asks for the
// indices (operand 1) the input already has its layout.
Layout TakeTokenOp::operandLayout(unsigned index, const Layout &preferred) {
  if (index == 1)
    return rowsSplitOf(layoutOf(getInput()));
  if (preferred.kind == Layout::S && preferred.dim == 1)
    return Layout::replicated();
  return preferred;
}

Layout TakeTokenGradOp::operandLayout(unsigned index, const Layout &preferred) {
  return index == 1 ? rowsSplitOf(layoutOf(getGrad())) : preferred;
}

// The positions are global, so dx is never split along the sequence: a
// sequence-split region gets it whole (its consumers slice it locally).
void TakeTokenGradOp::partition(PartitionContext &ctx) {
  partitionByDims(*this, ctx);
  Layout dx = layoutOf(getResult());
  if (dx.kind == Layout::S && dx.dim == 1)
    setLayout(getResult(), Layout::replicated());
}

// The global number of counted targets: every rank divides by all of it.
Layout CrossEntropyOp::operandLayout(unsigned index, const Layout &preferred) {
  return index == 2 ? Layout::replicated() : preferred;
}
Layout CrossEntropyGradOp::operandLayout(unsigned index,
                                         const Layout &preferred) {
  return index == 3 ? Layout::replicated() : preferred;
}

// An update reads its gradient in the parameter's own layout.
static void partitionUpdate(Operation *op, PartitionContext &ctx) {
  op->setOperand(
      1, ctx.convert(op->getOperand(1), layoutOf(op->getOperand(0)), op));
}
void SgdUpdateOp::partition(PartitionContext &ctx) {
  partitionUpdate(*this, ctx);
}
void AdamwUpdateOp::partition(PartitionContext &ctx) {
  partitionUpdate(*this, ctx);
}

// A replicated parameter's partial gradient is accumulated partial and
// reduced once per step, in @update, not once per microbatch.
void GradAccumulateOp::partition(PartitionContext &ctx) {
  Layout want = layoutOf(getParam());
  if (want.kind == Layout::R && isPartial(getGrad()))
    want = Layout::partial();
  ctx.setAccumulatorLayout(getParam().getDefiningOp<ParamOp>().getName(), want);
  setOperand(1, ctx.convert(getGrad(), want, *this));
}

// The accumulated gradient, in the layout train_step accumulated it in.
void GradOfOp::partition(PartitionContext &ctx) {
  std::optional<Layout> acc =
      ctx.accumulatorLayout(getParam().getDefiningOp<ParamOp>().getName());
  setLayout(getResult(), acc ? *acc : layoutOf(getParam()));
}
