//===- Partition.cpp - layouts and redistribution (DESIGN.md idea 2) ------===//
#include "galaxy/Layout.h"
#include "galaxy/Passes.h"

#include <map>

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

namespace galaxy {
#define GEN_PASS_DEF_PARTITION
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {

// Which model dimensions a region's method shards, with per-rank weights
// (scaled to each axis' extent, so A = heads·d follows the head split).
using SplitLabels = llvm::StringMap<std::vector<int64_t>>;

SmallVector<StringRef> axisNames(Value v) {
  SmallVector<StringRef> names;
  StringRef d = dimsOf(v);
  if (!d.empty())
    d.split(names, ',');
  return names;
}

bool isPassThrough(Operation *op) {
  // Linear in their (single f32) input, so partial sums may flow through them.
  return isa<AddOp, ScaleOp, DropoutOp, SplitHeadsOp, MergeHeadsOp>(op);
}

struct PartitionPass : galaxy::impl::PartitionBase<PartitionPass> {
  using PartitionBase::PartitionBase;

  void runOnOperation() override;
  LogicalResult partition(func::FuncOp fn);

  LogicalResult buildSplits();
  const SplitLabels &splitsOf(Operation *op) const;
  Layout pref(Value v, const SplitLabels &split) const;
  Value convert(Value v, const Layout &to, Operation *user);

  std::map<std::string, SplitLabels> regionSplits; // att, con, mlp, other
  // (value, target layout) -> converted value, so each redistribution happens
  // once.
  std::map<std::pair<void *, std::string>, Value> cache;
  // Per parameter: the layout its gradient accumulator holds (set while
  // partitioning @train_step, read by @update, which comes after it).
  llvm::StringMap<Layout> accumulatorLayout;
};

LogicalResult PartitionPass::buildSplits() {
  auto check = [&](StringRef what, ArrayRef<int64_t> sizes) -> LogicalResult {
    if (int64_t(sizes.size()) != world)
      return getOperation().emitError()
             << what << " has " << sizes.size() << " entries but the world has "
             << world << " ranks";
    return success();
  };
  for (auto [region, method] : {std::pair<std::string, std::string>{"att", att},
                                {"con", con},
                                {"mlp", mlp},
                                {"other", other}}) {
    SplitLabels &s = regionSplits[region];
    if (method == "none")
      continue;
    if (method == "dp") {
      if (failed(check("batch-sizes", batchSizes)))
        return failure();
      s["B"] = std::vector<int64_t>(batchSizes.begin(), batchSizes.end());
    } else if (method == "sp" && region != "other") {
      if (failed(check("seq-sizes", seqSizes)))
        return failure();
      s["S"] = std::vector<int64_t>(seqSizes.begin(), seqSizes.end());
    } else if (method == "tp" && region == "att") {
      if (failed(check("head-sizes", headSizes)))
        return failure();
      s["A"] = s["N"] =
          std::vector<int64_t>(headSizes.begin(), headSizes.end());
    } else if (method == "tp" && region == "mlp") {
      if (failed(check("inter-sizes", interSizes)))
        return failure();
      s["I"] = std::vector<int64_t>(interSizes.begin(), interSizes.end());
    } else {
      return getOperation().emitError()
             << "method '" << method << "' is not valid for " << region
             << " regions";
    }
  }
  return success();
}

const SplitLabels &PartitionPass::splitsOf(Operation *op) const {
  // The region the model declared for the op's block, else its block kind
  // when that names a region (BERT's att/con/mlp), else "other".
  auto region = op->getAttrOfType<StringAttr>(kRegionAttr);
  auto kind = op->getAttrOfType<StringAttr>(kBlockAttr);
  StringRef k = region ? region.getValue() : kind ? kind.getValue() : "";
  auto it = regionSplits.find(
      (k == "att" || k == "con" || k == "mlp") ? k.str() : "other");
  return it->second;
}

Layout PartitionPass::pref(Value v, const SplitLabels &split) const {
  auto shape = cast<RankedTensorType>(v.getType()).getShape();
  SmallVector<StringRef> names = axisNames(v);
  for (auto [axis, name] : llvm::enumerate(names)) {
    auto it = split.find(name);
    if (it == split.end() || axis >= shape.size())
      continue;
    int64_t total = 0;
    for (int64_t w : it->second)
      total += w;
    if (total <= 0 || shape[axis] % total != 0)
      continue; // cannot shard this axis by these weights: keep it whole
    std::vector<int64_t> sizes;
    for (int64_t w : it->second)
      sizes.push_back(w * (shape[axis] / total));
    return Layout::sharded(axis, sizes);
  }
  return Layout::replicated();
}

Value PartitionPass::convert(Value v, const Layout &to, Operation *user) {
  Layout from = layoutOf(v);
  if (from == to)
    return v;
  auto key = std::make_pair(v.getAsOpaquePointer(), to.str());
  if (auto it = cache.find(key); it != cache.end())
    return it->second;
  OpBuilder b(user);
  Location loc = user->getLoc();
  // A collective belongs to the block that consumes it (for function results:
  // the block that produced the value).
  Operation *owner = user->hasAttr(kBlockAttr) ? user : v.getDefiningOp();
  auto stamp = [&](Value r, const Layout &l) {
    Operation *op = r.getDefiningOp();
    for (StringRef name : {kBlockAttr.data(), kLayerAttr.data(),
                           kRegionAttr.data(), kBackwardAttr.data()})
      if (Attribute a = owner ? owner->getAttr(name) : Attribute())
        op->setAttr(name, a);
    setDims(r, dimsOf(v));
    setLayout(r, l);
    return r;
  };
  auto sizesAttr = [&](const Layout &l) {
    return b.getDenseI64ArrayAttr(l.sizes);
  };
  Value out;
  if (from.kind == Layout::P && to.kind == Layout::R) {
    out = stamp(b.create<AllReduceOp>(loc, v), to);
  } else if (from.kind == Layout::P && to.kind == Layout::S) {
    out = stamp(b.create<ReduceScatterOp>(loc, v, b.getI64IntegerAttr(to.dim),
                                          sizesAttr(to)),
                to);
  } else if (from.kind == Layout::S && to.kind == Layout::R) {
    out = stamp(b.create<AllGatherOp>(loc, v, b.getI64IntegerAttr(from.dim),
                                      sizesAttr(from)),
                to);
  } else if (from.kind == Layout::R && to.kind == Layout::S) {
    out = stamp(
        b.create<SliceOp>(loc, v, b.getI64IntegerAttr(to.dim), sizesAttr(to)),
        to);
  } else if (to.kind == Layout::P) {
    // R -> P: rank 0 keeps the value; S -> P: each rank zero-pads its shard.
    // Both local: this is what lets gradient contributions be summed lazily.
    out = stamp(b.create<ToPartialOp>(loc, v), to);
  } else {
    // S -> S' goes through R.
    out = convert(convert(v, Layout::replicated(), user), to, user);
  }
  cache[key] = out;
  return out;
}

LogicalResult PartitionPass::partition(func::FuncOp fn) {
  cache.clear();
  Block &body = fn.getBody().front();
  for (BlockArgument arg : body.getArguments())
    setLayout(arg, pref(arg, regionSplits["other"]));

  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(&op);
  for (Operation *op : ops) {
    const SplitLabels &split = splitsOf(op);
    if (op->getNumOperands() == 0) { // params, iota, fill
      for (Value r : op->getResults())
        setLayout(r, pref(r, split));
      continue;
    }
    if (isa<SgdUpdateOp, AdamwUpdateOp>(op)) {
      Value param = op->getOperand(0);
      op->setOperand(1, convert(op->getOperand(1), layoutOf(param), op));
      continue;
    }
    if (auto acc = dyn_cast<GradAccumulateOp>(op)) {
      // A replicated parameter's partial gradient is accumulated partial and
      // reduced once per step, in @update, not once per microbatch.
      Layout want = layoutOf(acc.getParam());
      if (want.kind == Layout::R && layoutOf(acc.getGrad()).kind == Layout::P)
        want = Layout::partial();
      accumulatorLayout[acc.getParam().getDefiningOp<ParamOp>().getName()] =
          want;
      op->setOperand(1, convert(acc.getGrad(), want, op));
      continue;
    }
    if (auto g = dyn_cast<GradOfOp>(op)) {
      auto it = accumulatorLayout.find(
          g.getParam().getDefiningOp<ParamOp>().getName());
      setLayout(g.getResult(), it != accumulatorLayout.end()
                                   ? it->second
                                   : layoutOf(g.getParam()));
      continue;
    }
    if (isPassThrough(op)) {
      // A partial operand that was already reduced for another consumer is
      // used reduced: no second reduction of the same value.
      for (OpOperand &o : op->getOpOperands())
        if (layoutOf(o.get()).kind == Layout::P)
          if (auto it = cache.find({o.get().getAsOpaquePointer(), "R"});
              it != cache.end())
            o.set(it->second);
      Value r = op->getResult(0);
      Layout want = pref(r, split);
      bool anyP = llvm::any_of(op->getOperands(), [](Value v) {
        return layoutOf(v).kind == Layout::P;
      });
      bool allS = want.kind == Layout::S &&
                  llvm::all_of(op->getOperands(), [&](Value v) {
                    return pref(v, split).kind == Layout::S;
                  });
      for (OpOperand &o : op->getOpOperands()) {
        Layout to = allS   ? pref(o.get(), split)
                    : anyP ? Layout::partial()
                           : Layout::replicated();
        o.set(convert(o.get(), to, op));
      }
      setLayout(r, allS   ? want
                   : anyP ? Layout::partial()
                          : Layout::replicated());
      continue;
    }
    // General rule: operands in their preferred layouts; a result keeps a
    // sharded dimension, or is partial when a sharded dimension was summed
    // away.
    llvm::StringSet<> operandSharded;
    for (OpOperand &o : op->getOpOperands()) {
      Layout to = pref(o.get(), split);
      if (isa<TakeTokenOp>(op) && to.kind == Layout::S && to.dim == 1)
        to = Layout::replicated(); // the selected token lives on one rank
      o.set(convert(o.get(), to, op));
      if (to.kind == Layout::S)
        operandSharded.insert(axisNames(o.get())[to.dim]);
    }
    for (Value r : op->getResults()) {
      Layout l = pref(r, split);
      if (l.kind != Layout::S) {
        SmallVector<StringRef> names = axisNames(r);
        for (const auto &s : operandSharded)
          if (!llvm::is_contained(names, s.getKey()))
            l = Layout::partial();
      }
      setLayout(r, l);
    }
  }
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (OpOperand &o : ret->getOpOperands())
    o.set(convert(o.get(), Layout::replicated(), ret));
  return success();
}

void PartitionPass::runOnOperation() {
  if (world < 1) {
    getOperation().emitError("world must be at least 1");
    return signalPassFailure();
  }
  if (failed(buildSplits()))
    return signalPassFailure();
  for (auto fn : getOperation().getOps<func::FuncOp>())
    if (failed(partition(fn)))
      return signalPassFailure();
  getOperation()->setAttr("galaxy.world",
                          Builder(&getContext()).getI64IntegerAttr(world));
}

} // namespace
