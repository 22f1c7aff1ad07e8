// What every model builder emits the same way: typed tensors, values tagged
// with their model dimensions, Hugging Face-named parameters, linears,
// addressed dropout and galaxy.block regions. A model's builder derives from
// GraphBuilder and adds its own layers.
#pragma once

#include <cstdint>
#include <string>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "models/registry.h"

namespace galaxy {

class GraphBuilder {
public:
  GraphBuilder(mlir::MLIRContext &ctx, llvm::StringRef model,
               double initializerRange)
      : loc(mlir::FileLineColLoc::get(&ctx, model, 0, 0)), b(&ctx),
        initStd(initializerRange) {}

protected:
  mlir::RankedTensorType f32(llvm::ArrayRef<int64_t> shape) {
    return mlir::RankedTensorType::get(shape, b.getF32Type());
  }
  mlir::RankedTensorType i32(llvm::ArrayRef<int64_t> shape) {
    return mlir::RankedTensorType::get(shape, b.getI32Type());
  }

  // Tags a value with the model dimension of each axis (B batch, S query
  // positions, K key positions, H hidden, A attention hidden, N heads, D head
  // size, I intermediate, ...). Partitioning shards by these names.
  mlir::Value dims(mlir::Value v, llvm::StringRef names) {
    setDims(v, names);
    return v;
  }
  // A trainable parameter; `init` "normal" draws N(0, initializer_range²),
  // "ones" / "zeros" fill.
  mlir::Value param(const std::string &name, llvm::ArrayRef<int64_t> shape,
                    llvm::StringRef init, llvm::StringRef names) {
    return dims(
        b.create<ParamOp>(loc, f32(shape), b.getStringAttr(name),
                          b.getBoolAttr(true), b.getStringAttr(init),
                          b.getF64FloatAttr(init == "normal" ? initStd : 0.0)),
        names);
  }
  // x's axis names with the last one replaced.
  std::string replaceLast(mlir::Value x, llvm::StringRef last) {
    llvm::StringRef names = dimsOf(x);
    return (names.rsplit(',').first + "," + last).str();
  }
  // Linear(in -> out) named `prefix`.weight (and .bias when `bias`).
  // `inDim` / `outDim` name the feature axes; the result keeps x's leading
  // axes.
  mlir::Value linear(mlir::Value x, const std::string &prefix, int64_t in,
                     int64_t out, llvm::StringRef inDim, llvm::StringRef outDim,
                     bool bias = true) {
    mlir::Value w = param(prefix + ".weight", {out, in}, "normal",
                          (outDim + "," + inDim).str());
    mlir::Value bv =
        bias ? param(prefix + ".bias", {out}, "zeros", outDim) : mlir::Value();
    auto xs = llvm::cast<mlir::RankedTensorType>(x.getType()).getShape();
    llvm::SmallVector<int64_t> ys(xs.drop_back());
    ys.push_back(out);
    return dims(b.create<LinearOp>(loc, f32(ys), x, w, bv, b.getBoolAttr(true)),
                replaceLast(x, outDim));
  }
  // Dropout with p == 0 is the identity and is not emitted. Every emitted
  // dropout takes the next op id: the id addresses its mask, so the same
  // model draws the same masks in every parallel mode.
  mlir::Value dropout(mlir::Value x, double p) {
    if (p == 0.0)
      return x;
    return dims(b.create<DropoutOp>(loc, x, b.getF64FloatAttr(p),
                                    b.getI64IntegerAttr(nextOpId++)),
                dimsOf(x));
  }

  // The arguments of a function built over a model's declared inputs, found
  // by input name (a null Value for a name the model does not declare).
  struct Inputs {
    std::vector<std::string> names;
    mlir::Block *entry = nullptr;
    mlir::Value operator()(llvm::StringRef name) const {
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == name)
          return entry->getArgument(i);
      return mlir::Value();
    }
  };
  // `func.func @forward` over `inputs` (the spec's, in order: i32 or f32 of
  // their global shapes, each argument tagged galaxy.input and galaxy.dims)
  // returning `results`, appended to `module`; the insertion point moves to
  // its entry.
  Inputs beginForward(mlir::ModuleOp module,
                      const std::vector<models::ModelInput> &inputs,
                      llvm::ArrayRef<mlir::Type> results) {
    return beginFunction(module, "forward", inputs, results, {});
  }
  // The same for a function `name` whose results carry `resultNames`
  // (galaxy.output; none when empty): a generation program's.
  Inputs beginFunction(mlir::ModuleOp module, llvm::StringRef name,
                       const std::vector<models::ModelInput> &inputs,
                       llvm::ArrayRef<mlir::Type> results,
                       llvm::ArrayRef<std::string> resultNames) {
    b.setInsertionPointToEnd(module.getBody());
    llvm::SmallVector<mlir::Type> argTypes;
    for (const models::ModelInput &in : inputs)
      argTypes.push_back(in.isInt ? mlir::Type(i32(in.shape)) : f32(in.shape));
    auto fn = b.create<mlir::func::FuncOp>(
        loc, name, b.getFunctionType(argTypes, results));
    Inputs out;
    for (auto [i, in] : llvm::enumerate(inputs)) {
      fn.setArgAttr(i, kInputAttr, b.getStringAttr(in.name));
      fn.setArgAttr(i, kDimsAttr, argDimsAttr(b.getContext(), in.dims));
      out.names.push_back(in.name);
    }
    for (auto [i, n] : llvm::enumerate(resultNames))
      fn.setResultAttr(i, kOutputAttr, b.getStringAttr(n));
    out.entry = fn.addEntryBlock();
    b.setInsertionPointToStart(out.entry);
    return out;
  }

  // A causal LM's / seq2seq's token-level loss, Hugging Face's: the sum of
  // cross-entropies over the (pre-shifted) labels divided by `numTargets`,
  // the targets of the step's whole batch (a program input the data loader
  // fills), so each rank's partial sum over its rows or positions adds up to
  // the serial mean. A pipeline weights microbatch losses by rows / stepRows
  // (the mean of means BERT needs), so a microbatch program divides by that
  // share too, which makes the weighted sum Σ sum_i / numTargets again.
  mlir::Value tokenLoss(mlir::Value logits, mlir::Value labels,
                        mlir::Value numTargets, int64_t rows,
                        int64_t stepRows) {
    return dims(b.create<CrossEntropyOp>(
                    loc, f32({}), logits, labels, numTargets,
                    b.getF64FloatAttr(double(rows) / double(stepRows)),
                    mlir::IntegerAttr()),
                "");
  }
  // A sequence classifier's loss, Hugging Face's: the mean cross-entropy over
  // the batch's `rows` rows (labels of -100 count as none).
  mlir::Value rowLoss(mlir::Value logits, mlir::Value labels, int64_t rows) {
    return dims(b.create<CrossEntropyOp>(loc, f32({}), logits, labels,
                                         b.getF64FloatAttr(double(rows)),
                                         mlir::IntegerAttr()),
                "");
  }

  // Emits a galaxy.block of `kind` at `layer` (-1: outside the layer
  // sequence) whose body `body` builds, and returns its results. `region`
  // names the partition region of a block whose kind is not one.
  template <typename F>
  llvm::SmallVector<mlir::Value> block(llvm::StringRef kind, int64_t layer,
                                       F body, llvm::StringRef region = "") {
    auto *blk = new mlir::Block();
    mlir::OpBuilder::InsertionGuard guard(b);
    mlir::OpBuilder::InsertPoint outer = b.saveInsertionPoint();
    b.setInsertionPointToStart(blk);
    llvm::SmallVector<mlir::Value> outs = body();
    b.create<YieldOp>(loc, outs);
    b.restoreInsertionPoint(outer);
    auto op = b.create<BlockOp>(loc, mlir::TypeRange(mlir::ValueRange(outs)),
                                kind, layer);
    if (!region.empty())
      op->setAttr(kRegionAttr, b.getStringAttr(region));
    op.getBody().push_back(blk);
    for (auto [res, out] : llvm::zip(op.getResults(), outs))
      setDims(res, dimsOf(out));
    return llvm::SmallVector<mlir::Value>(op.getResults());
  }

  mlir::Location loc;
  mlir::OpBuilder b;
  double initStd;
  int64_t nextOpId = 1;
};

} // namespace galaxy
