//===- Fuse.cpp - elementwise epilogues into one kernel -------------------===//
//
// Runs after galaxy-partition, on what is lowered: pairs of ops that each make
// a pass over the same tensor become one fused op (GalaxyOps.td, "Fused
// kernels"), so the plan names the fused kernel. A pair fuses only where both
// values have one layout and one set of dims, so the fused op lowers on every
// rank to what the pair lowered to.
//
//===----------------------------------------------------------------------===//
#include "galaxy/Passes.h"

#include "mlir/IR/Builders.h"

namespace galaxy {
#define GEN_PASS_DEF_FUSE
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {

// `name` (galaxy.dims or galaxy.layout) of result `v`; null when unannotated.
Attribute resultAttr(Value v, StringRef name) {
  Operation *op = v.getDefiningOp();
  if (!op)
    return {};
  auto arr = op->getAttrOfType<ArrayAttr>(name);
  unsigned i = cast<OpResult>(v).getResultNumber();
  return arr && i < arr.size() ? arr[i] : Attribute();
}

// The attribute of `v` itself, a function argument's included.
Attribute valueAttr(Value v, StringRef name) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    auto fn = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
    auto arr = fn ? fn.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), name)
                  : ArrayAttr();
    return arr && arr.size() == 1 ? arr[0] : Attribute();
  }
  return resultAttr(v, name);
}

bool sameLayoutAndDims(Value a, Value b) {
  return valueAttr(a, kLayoutAttr) == valueAttr(b, kLayoutAttr) &&
         valueAttr(a, kDimsAttr) == valueAttr(b, kDimsAttr);
}

bool sameDirection(Operation *a, Operation *b) {
  return a->hasAttr(kBackwardAttr) == b->hasAttr(kBackwardAttr) &&
         a->getBlock() == b->getBlock();
}

// add(dropout(x), r) -> dropout_add(x, r) when the add is the dropout's only
// reader. x/(1-p) + r is the sum the add computed (addition commutes
// exactly, so either operand order fuses).
bool fuseDropoutAdd(AddOp add) {
  for (unsigned i = 0; i < 2; ++i) {
    auto drop = add->getOperand(i).getDefiningOp<DropoutOp>();
    Value residual = add->getOperand(1 - i);
    if (!drop || !drop->hasOneUse() || !sameDirection(drop, add) ||
        !sameLayoutAndDims(drop.getResult(), add.getResult()) ||
        !sameLayoutAndDims(residual, add.getResult()))
      continue;
    OpBuilder b(add);
    auto fused =
        b.create<DropoutAddOp>(add.getLoc(), add.getType(), drop.getInput(),
                               residual, drop.getPAttr(), drop.getOpIdAttr());
    fused->setDiscardableAttrs(add->getDiscardableAttrDictionary());
    add.replaceAllUsesWith(fused.getResult());
    add.erase();
    drop.erase();
    return true;
  }
  return false;
}

// The fused op's per-result attribute: the producer's, then the bias_grad's.
void setPairAttr(Operation *fused, StringRef name, Value produced, Value bias) {
  Attribute p = resultAttr(produced, name), g = resultAttr(bias, name);
  if (p && g)
    fused->setAttr(name, ArrayAttr::get(fused->getContext(), {p, g}));
}

// bias_grad(producer(...)) -> one op with the producer's result and the
// column sums: `makeFused` builds it before the producer; the producer's
// other readers read its first result.
template <typename Producer, typename MakeFused>
bool fuseBiasGradInto(BiasGradOp bias, MakeFused makeFused) {
  auto producer = bias.getGrad().getDefiningOp<Producer>();
  if (!producer || !sameDirection(producer, bias))
    return false;
  OpBuilder b(producer);
  Operation *fused = makeFused(b, producer, bias.getType());
  fused->setDiscardableAttrs(producer->getDiscardableAttrDictionary());
  setPairAttr(fused, kDimsAttr, producer->getResult(0), bias.getResult());
  setPairAttr(fused, kLayoutAttr, producer->getResult(0), bias.getResult());
  producer->replaceAllUsesWith(ValueRange{fused->getResult(0)});
  bias.replaceAllUsesWith(fused->getResult(1));
  bias.erase();
  producer->erase();
  return true;
}

// bias_grad(dropout(dy)) -> dropout_bias_grad(dy).
bool fuseDropoutBiasGrad(BiasGradOp bias) {
  return fuseBiasGradInto<DropoutOp>(
      bias, [](OpBuilder &b, DropoutOp drop, Type biasType) {
        return b
            .create<DropoutBiasGradOp>(drop.getLoc(), drop.getType(), biasType,
                                       drop.getInput(), drop.getPAttr(),
                                       drop.getOpIdAttr())
            .getOperation();
      });
}

// bias_grad(gelu_grad(x, dy)) -> gelu_grad_bias_grad(x, dy): the MLP's first
// linear's bias gradient.
bool fuseGeluGradBiasGrad(BiasGradOp bias) {
  return fuseBiasGradInto<GeluGradOp>(
      bias, [](OpBuilder &b, GeluGradOp g, Type biasType) {
        return b
            .create<GeluGradBiasGradOp>(g.getLoc(), g.getType(), biasType,
                                        g.getInput(), g.getGrad(),
                                        g.getApproximateAttr())
            .getOperation();
      });
}

// bias_grad(merge_heads(dh)) -> merge_heads_bias_grad(dh): an attention
// projection's bias gradient summed while the heads are copied.
bool fuseMergeHeadsBiasGrad(BiasGradOp bias) {
  return fuseBiasGradInto<MergeHeadsOp>(
      bias, [](OpBuilder &b, MergeHeadsOp merge, Type biasType) {
        return b
            .create<MergeHeadsBiasGradOp>(merge.getLoc(), merge.getType(),
                                          biasType, merge.getInput())
            .getOperation();
      });
}

struct FusePass : galaxy::impl::FuseBase<FusePass> {
  using FuseBase::FuseBase;
  void runOnOperation() override {
    SmallVector<AddOp> adds;
    SmallVector<BiasGradOp> biasGrads;
    getOperation().walk([&](Operation *op) {
      if (auto a = dyn_cast<AddOp>(op))
        adds.push_back(a);
      else if (auto g = dyn_cast<BiasGradOp>(op))
        biasGrads.push_back(g);
    });
    if (dropoutAdd)
      for (AddOp a : adds)
        fuseDropoutAdd(a);
    for (BiasGradOp g : biasGrads)
      (dropoutBiasGrad && fuseDropoutBiasGrad(g)) ||
          (mergeHeadsBiasGrad && fuseMergeHeadsBiasGrad(g)) ||
          (geluGradBiasGrad && fuseGeluGradBiasGrad(g));
  }
};
} // namespace
