//===- GalaxyGradients.cpp - reverse-mode rules, one per differentiable op ===//
//
// Each rule builds the operand gradients from the result gradients using
// galaxy ops only, so the backward graph is ordinary IR that partitioning
// treats like the forward graph.
//
//===----------------------------------------------------------------------===//
#include "galaxy/GalaxyDialect.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace galaxy;

using Grads = SmallVector<Value>;

namespace {
Grads none(Operation *op) { return Grads(op->getNumOperands(), Value()); }

Value matmul(OpBuilder &b, Location loc, Type type, Value lhs, Value rhs,
             bool ta, bool tb, double alpha) {
  return b.create<MatmulOp>(loc, type, lhs, rhs, b.getBoolAttr(ta),
                            b.getBoolAttr(tb), b.getF64FloatAttr(alpha));
}
} // namespace

Grads EmbeddingOp::buildGradients(OpBuilder &b, ValueRange dy,
                                  ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<EmbeddingGradOp>(getLoc(), getTable().getType(), getIds(),
                                     dy[0], getPaddingIdxAttr());
  return g;
}

Grads AddOp::buildGradients(OpBuilder &, ValueRange dy, ArrayRef<bool> need) {
  return {need[0] ? dy[0] : Value(), need[1] ? dy[0] : Value()};
}

Grads MulOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<MulOp>(getLoc(), dy[0], getRhs());
  if (need[1])
    g[1] = b.create<MulOp>(getLoc(), dy[0], getLhs());
  return g;
}

Grads ScaleOp::buildGradients(OpBuilder &b, ValueRange dy,
                              ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<ScaleOp>(getLoc(), dy[0], getAlphaAttr());
  return g;
}

Grads LinearOp::buildGradients(OpBuilder &b, ValueRange dy,
                               ArrayRef<bool> need) {
  Grads g = none(*this);
  Location loc = getLoc();
  bool tw = getTransposeW();
  if (need[0]) // dx = dy·w (w [N,K]) or dy·wᵀ (w [K,N])
    g[0] = b.create<LinearOp>(loc, getInput().getType(), dy[0], getWeight(),
                              Value(), b.getBoolAttr(!tw));
  if (need[1])
    g[1] = tw ? b.create<LinearWeightGradOp>(loc, getWeight().getType(), dy[0],
                                             getInput())
              : b.create<LinearWeightGradOp>(loc, getWeight().getType(),
                                             getInput(), dy[0]);
  if (getBias() && need[2])
    g[2] = b.create<BiasGradOp>(loc, getBias().getType(), dy[0]);
  return g;
}

Grads MatmulOp::buildGradients(OpBuilder &b, ValueRange dy,
                               ArrayRef<bool> need) {
  Grads g = none(*this);
  Location loc = getLoc();
  Value a = getLhs(), bb = getRhs(), dc = dy[0];
  Type ta = a.getType(), tb = bb.getType();
  double al = getAlpha().convertToDouble();
  bool tA = getTransposeA(), tB = getTransposeB();
  // c = α·op(a)·op(b); each case writes da, db with the transposes that keep
  // them in a's and b's own layouts.
  if (!tA && !tB) {
    if (need[0])
      g[0] = matmul(b, loc, ta, dc, bb, false, true, al);
    if (need[1])
      g[1] = matmul(b, loc, tb, a, dc, true, false, al);
  } else if (!tA && tB) {
    if (need[0])
      g[0] = matmul(b, loc, ta, dc, bb, false, false, al);
    if (need[1])
      g[1] = matmul(b, loc, tb, dc, a, true, false, al);
  } else if (tA && !tB) {
    if (need[0])
      g[0] = matmul(b, loc, ta, bb, dc, false, true, al);
    if (need[1])
      g[1] = matmul(b, loc, tb, a, dc, false, false, al);
  } else {
    if (need[0])
      g[0] = matmul(b, loc, ta, bb, dc, true, true, al);
    if (need[1])
      g[1] = matmul(b, loc, tb, dc, a, true, true, al);
  }
  return g;
}

Grads SplitHeadsOp::buildGradients(OpBuilder &b, ValueRange dy,
                                   ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<MergeHeadsOp>(getLoc(), getInput().getType(), dy[0]);
  return g;
}

Grads MergeHeadsOp::buildGradients(OpBuilder &b, ValueRange dy,
                                   ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<SplitHeadsOp>(getLoc(), getInput().getType(), dy[0]);
  return g;
}

Grads RepeatKvOp::buildGradients(OpBuilder &b, ValueRange dy,
                                 ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0]) // each KV head's gradient sums its group's query heads
    g[0] = b.create<RepeatKvGradOp>(getLoc(), getInput().getType(), dy[0],
                                    getGroupsAttr());
  return g;
}

Grads RopeOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  // A rotation's transpose is the rotation by the opposite angle.
  if (need[0])
    g[0] = b.create<RopeOp>(getLoc(), getType(), dy[0], getThetaAttr(),
                            b.getBoolAttr(!getInverse()));
  return g;
}

Grads MaskedSoftmaxOp::buildGradients(OpBuilder &b, ValueRange dy,
                                      ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<SoftmaxGradOp>(getLoc(), getType(), getResult(), dy[0]);
  return g; // the mask is data: no gradient
}

Grads LayerNormOp::buildGradients(OpBuilder &b, ValueRange dy,
                                  ArrayRef<bool> need) {
  auto t = getGamma().getType();
  // Frozen gamma/beta: no parameter-gradient work in the kernel.
  auto lg = b.create<LayerNormGradOp>(
      getLoc(), getInput().getType(), t, t, getInput(), getGamma(), dy[0],
      getEpsAttr(), b.getBoolAttr(need[1] || need[2]));
  // Every result has its primal's axes, used or not (partitioning lays out
  // an unneeded dx like x, so the kernel sees one shape).
  setDims(lg.getDx(), dimsOf(getInput()));
  setDims(lg.getDgamma(), dimsOf(getGamma()));
  setDims(lg.getDbeta(), dimsOf(getBeta()));
  return {need[0] ? lg.getDx() : Value(), need[1] ? lg.getDgamma() : Value(),
          need[2] ? lg.getDbeta() : Value()};
}

Grads RmsNormOp::buildGradients(OpBuilder &b, ValueRange dy,
                                ArrayRef<bool> need) {
  // Frozen weight: no parameter-gradient work in the kernel.
  auto g = b.create<RmsNormGradOp>(
      getLoc(), getInput().getType(), getWeight().getType(), getInput(),
      getWeight(), dy[0], getEpsAttr(), b.getBoolAttr(need[1]));
  setDims(g.getDx(), dimsOf(getInput())); // as layer_norm's rule
  setDims(g.getDweight(), dimsOf(getWeight()));
  return {need[0] ? g.getDx() : Value(), need[1] ? g.getDweight() : Value()};
}

Grads GeluOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<GeluGradOp>(getLoc(), getType(), getInput(), dy[0],
                                getApproximateAttr());
  return g;
}

Grads ReluOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<ReluGradOp>(getLoc(), getType(), getInput(), dy[0]);
  return g;
}

Grads SiluOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<SiluGradOp>(getLoc(), getType(), getInput(), dy[0]);
  return g;
}

Grads TanhOp::buildGradients(OpBuilder &b, ValueRange dy, ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<TanhGradOp>(getLoc(), getType(), getResult(), dy[0]);
  return g;
}

Grads DropoutOp::buildGradients(OpBuilder &b, ValueRange dy,
                                ArrayRef<bool> need) {
  Grads g = none(*this);
  // The same (p, op_id) address draws the same mask, so backward is dropout of
  // dy.
  if (need[0])
    g[0] = b.create<DropoutOp>(getLoc(), dy[0], getPAttr(), getOpIdAttr());
  return g;
}

Grads TakeTokenOp::buildGradients(OpBuilder &b, ValueRange dy,
                                  ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<TakeTokenGradOp>(getLoc(), getInput().getType(), dy[0],
                                     getIndices(), getIndexAttr());
  return g; // the indices are data: no gradient
}

Grads CrossEntropyOp::buildGradients(OpBuilder &b, ValueRange dy,
                                     ArrayRef<bool> need) {
  Grads g = none(*this);
  if (need[0])
    g[0] = b.create<CrossEntropyGradOp>(
        getLoc(), getLogits().getType(), getLogits(), getLabels(), dy[0],
        getCount(), getDenominatorAttr(), getIgnoreIndexAttr());
  return g; // labels and count are data: no gradient
}
