//===- Autodiff.cpp - reverse-mode differentiation of @forward ------------===//
#include "galaxy/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

namespace galaxy {
#define GEN_PASS_DEF_AUTODIFF
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {

struct AutodiffPass : galaxy::impl::AutodiffBase<AutodiffPass> {
  using AutodiffBase::AutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError(
          "galaxy-autodiff needs a func.func @forward to differentiate");
      return signalPassFailure();
    }
    if (optimizer != "sgd" && optimizer != "adamw") {
      module.emitError() << "unknown optimizer '" << optimizer
                         << "'; expected sgd or adamw";
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step")) {
      module.emitError("@train_step already exists; run galaxy-autodiff once");
      return signalPassFailure();
    }
    OpBuilder mb(module.getContext());
    mb.setInsertionPointAfter(forward);
    auto train = cast<func::FuncOp>(mb.clone(*forward));
    train.setSymName("train_step");
    if (failed(differentiate(train)))
      return signalPassFailure();
    if (accumulate)
      buildUpdate(module, train);
  }

  LogicalResult differentiate(func::FuncOp fn);
  void emitUpdate(OpBuilder &b, ParamOp p, Value grad);
  void buildUpdate(ModuleOp module, func::FuncOp train);
};

StringRef ioName(func::FuncOp fn, unsigned i, bool result) {
  auto a = result ? fn.getResultAttrOfType<StringAttr>(i, kOutputAttr)
                  : fn.getArgAttrOfType<StringAttr>(i, kInputAttr);
  return a ? a.getValue() : "";
}

// Copies the forward op's region attributes onto the ops created after `mark`.
void stampBackward(Operation *fwd, Block::iterator from, Block::iterator to) {
  for (auto it = from; it != to; ++it) {
    copyPlacement(fwd, &*it);
    if (Attribute a = fwd->getAttr(kMethodAttr))
      it->setAttr(kMethodAttr, a);
    it->setAttr(kBackwardAttr, UnitAttr::get(fwd->getContext()));
  }
}

LogicalResult AutodiffPass::differentiate(func::FuncOp fn) {
  Block &body = fn.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  // A pipeline stage before the last returns activations "pp.out.K" whose
  // gradients arrive from the next stage, and differentiates its "pp.in.K"
  // arguments for the previous one.
  const bool seeded =
      ret.getNumOperands() > 0 && ioName(fn, 0, true).starts_with("pp.out.");
  SmallVector<BlockArgument> wrtArgs;
  for (BlockArgument a : body.getArguments())
    if (ioName(fn, a.getArgNumber(), false).starts_with("pp.in."))
      wrtArgs.push_back(a);
  if (!seeded &&
      (ret.getNumOperands() == 0 ||
       cast<RankedTensorType>(ret.getOperand(0).getType()).getRank() != 0))
    return fn.emitError(
        "@forward must return the scalar loss as its first result");

  // Forward sweep: which values depend on a trainable parameter.
  llvm::DenseSet<Value> needs(wrtArgs.begin(), wrtArgs.end());
  llvm::StringMap<int>
      paramUses; // ParamOps per name, so tied weights update once
  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator()) {
    ops.push_back(&op);
    if (auto p = dyn_cast<ParamOp>(op)) {
      if (p.getTrainable()) {
        needs.insert(p.getResult());
        ++paramUses[p.getName()];
      }
      continue;
    }
    if (isa<GradientOpInterface>(op) &&
        llvm::any_of(op.getOperands(),
                     [&](Value v) { return needs.contains(v); }))
      for (Value r : op.getResults())
        needs.insert(r);
  }
  Value loss = ret.getOperand(0);
  const bool pipeline = seeded || !wrtArgs.empty() || accumulate;
  if (!pipeline && !needs.contains(loss))
    return fn.emitError("the loss does not depend on any trainable parameter");

  OpBuilder b(ret);
  llvm::DenseMap<Value, Value> grads;
  llvm::StringMap<Value> paramGrads;
  auto accumulate = [&](Value v, Value g, Operation *fwd) {
    auto [it, inserted] = grads.try_emplace(v, g);
    if (!inserted) {
      Block::iterator before = std::prev(Block::iterator(ret));
      it->second = b.create<AddOp>(g.getLoc(), it->second, g);
      setDims(it->second, dimsOf(v));
      stampBackward(fwd, std::next(before), Block::iterator(ret));
    }
  };
  if (seeded) {
    // Seeds are new arguments "pp.grad.K", typed and labelled like pp.out.K.
    for (unsigned k = 0; k < ret.getNumOperands(); ++k) {
      Value out = ret.getOperand(k);
      std::string name = ioName(fn, k, true).str();
      name.replace(0, strlen("pp.out."), "pp.grad.");
      unsigned idx = fn.getNumArguments();
      OpBuilder ab(fn.getContext());
      (void)fn.insertArgument(
          idx, out.getType(),
          ab.getDictionaryAttr(
              {ab.getNamedAttr(kInputAttr, ab.getStringAttr(name)),
               ab.getNamedAttr(kDimsAttr,
                               argDimsAttr(ab.getContext(), dimsOf(out)))}),
          out.getLoc());
      if (needs.contains(out))
        accumulate(out, body.getArgument(idx),
                   out.getDefiningOp() ? out.getDefiningOp()
                                       : ret.getOperation());
    }
  } else if (needs.contains(loss)) {
    Value one = b.create<FillOp>(loss.getLoc(), loss.getType(),
                                 b.getF64FloatAttr(lossScale));
    one.getDefiningOp()->setAttr(kBackwardAttr, b.getUnitAttr());
    if (Operation *def = loss.getDefiningOp())
      stampBackward(def, Block::iterator(one.getDefiningOp()),
                    Block::iterator(ret));
    grads[loss] = one;
  }

  // Reverse sweep.
  for (Operation *op : llvm::reverse(ops)) {
    if (auto p = dyn_cast<ParamOp>(op)) {
      auto it = grads.find(p.getResult());
      if (!p.getTrainable() || it == grads.end())
        continue;
      Value &acc = paramGrads[p.getName()];
      if (acc) {
        Block::iterator before = std::prev(Block::iterator(ret));
        acc = b.create<AddOp>(p.getLoc(), acc, it->second);
        setDims(acc, dimsOf(p.getResult()));
        stampBackward(p, std::next(before), Block::iterator(ret));
      } else {
        acc = it->second;
      }
      if (--paramUses[p.getName()] == 0)
        emitUpdate(b, p, acc);
      continue;
    }
    auto diff = dyn_cast<GradientOpInterface>(op);
    if (!diff || llvm::none_of(op->getResults(),
                               [&](Value r) { return grads.count(r); }))
      continue;
    SmallVector<Value> resultGrads;
    for (Value r : op->getResults()) {
      auto it = grads.find(r);
      if (it != grads.end()) {
        resultGrads.push_back(it->second);
        continue;
      }
      Value zero =
          b.create<FillOp>(op->getLoc(), r.getType(), b.getF64FloatAttr(0.0));
      setDims(zero, dimsOf(r));
      stampBackward(op, Block::iterator(zero.getDefiningOp()),
                    Block::iterator(ret));
      resultGrads.push_back(zero);
    }
    SmallVector<bool> needGrad;
    for (Value v : op->getOperands())
      needGrad.push_back(needs.contains(v));
    Block::iterator before = std::prev(Block::iterator(ret));
    SmallVector<Value> operandGrads =
        diff.buildGradients(b, resultGrads, needGrad);
    stampBackward(op, std::next(before), Block::iterator(ret));
    // A gradient has its primal's axes; label what the rule created.
    for (auto [v, g] : llvm::zip(op->getOperands(), operandGrads))
      if (g) {
        if (dimsOf(g).empty())
          setDims(g, dimsOf(v));
        accumulate(v, g, op);
      }
  }

  if (!pipeline) {
    b.create<func::ReturnOp>(ret.getLoc(), ValueRange{loss});
    ret.erase();
    fn.setType(FunctionType::get(fn.getContext(), fn.getArgumentTypes(),
                                 {loss.getType()}));
    return success();
  }
  // A stage returns its forward results (pp.out.K, or the loss only), then
  // the gradient of each pp.in.K (zeros when nothing reached it).
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> attrs;
  unsigned nFwd = seeded ? ret.getNumOperands() : 1;
  for (unsigned k = 0; k < nFwd; ++k) {
    results.push_back(ret.getOperand(k));
    attrs.push_back(fn.getResultAttrDict(k));
  }
  for (BlockArgument a : wrtArgs) {
    Value g = grads.lookup(a);
    if (!g) {
      g = b.create<FillOp>(a.getLoc(), a.getType(), b.getF64FloatAttr(0.0));
      g.getDefiningOp()->setAttr(kBackwardAttr, b.getUnitAttr());
      setDims(g, dimsOf(a));
    }
    results.push_back(g);
    std::string name = ioName(fn, a.getArgNumber(), false).str();
    name.replace(0, strlen("pp.in."), "pp.dgrad.");
    attrs.push_back(b.getDictionaryAttr(
        b.getNamedAttr(kOutputAttr, b.getStringAttr(name))));
  }
  b.create<func::ReturnOp>(ret.getLoc(), results);
  ret.erase();
  fn.setType(FunctionType::get(fn.getContext(), fn.getArgumentTypes(),
                               ValueRange(results).getTypes()));
  fn.setAllResultAttrs(attrs);
  return success();
}

void AutodiffPass::emitUpdate(OpBuilder &b, ParamOp p, Value grad) {
  Location loc = p.getLoc();
  Block::iterator before = std::prev(b.getInsertionPoint());
  if (accumulate)
    b.create<GradAccumulateOp>(loc, p, grad);
  else if (optimizer == "sgd")
    b.create<SgdUpdateOp>(loc, p, grad, b.getF64FloatAttr(lr),
                          b.getF64FloatAttr(weightDecay));
  else
    b.create<AdamwUpdateOp>(loc, p, grad, b.getF64FloatAttr(lr),
                            b.getF64FloatAttr(beta1), b.getF64FloatAttr(beta2),
                            b.getF64FloatAttr(epsilon),
                            b.getF64FloatAttr(weightDecay));
  stampBackward(p, std::next(before), b.getInsertionPoint());
}

} // namespace

namespace {
// @update: one optimizer step from the accumulated gradients, then zeroed
// accumulators. Each op carries its parameter's block and layer.
void AutodiffPass::buildUpdate(ModuleOp module, func::FuncOp train) {
  OpBuilder b(module.getContext());
  b.setInsertionPointAfter(train);
  auto fn = b.create<func::FuncOp>(train.getLoc(), "update",
                                   b.getFunctionType({}, {}));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToEnd(body);
  llvm::StringSet<> done;
  train.walk([&](GradAccumulateOp acc) {
    auto p = acc.getParam().getDefiningOp<ParamOp>();
    if (!done.insert(p.getName()).second)
      return;
    Block::iterator before =
        body->empty() ? body->end() : std::prev(body->end());
    auto param = cast<ParamOp>(b.clone(*p));
    Value g = b.create<GradOfOp>(p.getLoc(), param);
    setDims(g, dimsOf(param));
    if (optimizer == "sgd")
      b.create<SgdUpdateOp>(p.getLoc(), param, g, b.getF64FloatAttr(lr),
                            b.getF64FloatAttr(weightDecay));
    else
      b.create<AdamwUpdateOp>(
          p.getLoc(), param, g, b.getF64FloatAttr(lr), b.getF64FloatAttr(beta1),
          b.getF64FloatAttr(beta2), b.getF64FloatAttr(epsilon),
          b.getF64FloatAttr(weightDecay));
    b.create<ZeroGradOp>(p.getLoc(), param);
    Block::iterator from =
        before == body->end() ? body->begin() : std::next(before);
    for (auto it = from; it != body->end(); ++it)
      if (!isa<ParamOp>(*it))
        stampBackward(p, it, std::next(it));
  });
  b.create<func::ReturnOp>(train.getLoc());
}
} // namespace
