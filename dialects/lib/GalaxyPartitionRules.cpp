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
    if (to.kind == Layout::S)
      operandSharded.insert(dimNamesOf(o.get())[to.dim]);
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

// The selected token lives on one rank of a sequence split: gather first.
Layout TakeTokenOp::operandLayout(unsigned, const Layout &preferred) {
  if (preferred.kind == Layout::S && preferred.dim == 1)
    return Layout::replicated();
  return preferred;
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
