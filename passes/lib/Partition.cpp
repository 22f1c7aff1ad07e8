//===- Partition.cpp - layouts and redistribution (DESIGN.md idea 2) ------===//
#include "galaxy/Layout.h"
#include "galaxy/Passes.h"

#include <map>
#include <optional>

#include "compiler/config/split.h"
#include "runtime/plan/programs.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

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

struct PartitionPass : galaxy::impl::PartitionBase<PartitionPass>,
                       PartitionContext {
  using PartitionBase::PartitionBase;

  // PartitionContext: what the ops' partition rules (PartitionOpInterface)
  // ask of the pass.
  Layout preferred(Value v, Operation *op) override {
    return pref(v, splitsOf(op));
  }
  Value convert(Value v, const Layout &to, Operation *user) override;
  Value reducedCopy(Value v) override {
    auto it = cache.find({v.getAsOpaquePointer(), "R"});
    return it == cache.end() ? Value() : it->second;
  }
  void setAccumulatorLayout(StringRef param, const Layout &l) override {
    accumulatorLayout_[param] = l;
  }
  std::optional<Layout> accumulatorLayout(StringRef param) override {
    auto it = accumulatorLayout_.find(param);
    if (it == accumulatorLayout_.end())
      return std::nullopt;
    return it->second;
  }

  void runOnOperation() override;
  LogicalResult partition(func::FuncOp fn);

  LogicalResult buildSplits();
  const SplitLabels &splitsOf(Operation *op) const;
  Layout pref(Value v, const SplitLabels &split) const;

  std::map<std::string, SplitLabels> regionSplits; // att, con, mlp, other
  // The first value whose heads (N) or intermediate columns (I) the split
  // would leave a rank a fraction of (pref), reported as an error.
  struct FractionalAxis {
    Value value;
    std::string name;
    int64_t extent;
    std::vector<int64_t> weights;
  };
  mutable std::optional<FractionalAxis> fractionalAxis;
  // (value, target layout) -> converted value, so each redistribution happens
  // once.
  std::map<std::pair<void *, std::string>, Value> cache;
  // Per parameter: the layout its gradient accumulator holds (set while
  // partitioning @train_step, read by @update, which comes after it).
  llvm::StringMap<Layout> accumulatorLayout_;
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
      // T: an encoder-decoder's target positions, the second sequence,
      // split in the same proportion (pref).
      s["S"] = s["T"] = std::vector<int64_t>(seqSizes.begin(), seqSizes.end());
    } else if (method == "tp" && region == "att") {
      if (failed(check("head-sizes", headSizes)))
        return failure();
      // Query heads (N, their hidden A) and, for grouped-query attention,
      // KV heads (NK, AK) follow one head split: a rank's KV heads are those
      // its query heads read when the shares are whole.
      s["A"] = s["N"] = s["NK"] = s["AK"] =
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
  SmallVector<StringRef> names = dimNamesOf(v);
  for (auto [axis, name] : llvm::enumerate(names)) {
    auto it = split.find(name);
    if (it == split.end() || axis >= shape.size())
      continue;
    int64_t total = 0;
    for (int64_t w : it->second)
      total += w;
    if (total <= 0)
      continue;
    // Target positions need no whole shares: the boundaries round (a rank
    // with none keeps the axis whole).
    if (name == "T") {
      std::vector<int64_t> sizes =
          config::proportionalSplit(it->second, shape[axis]);
      if (llvm::is_contained(sizes, 0))
        continue;
      return Layout::sharded(axis, sizes);
    }
    // Rank r's share is w_r·extent/total. KV heads that do not split like
    // the query heads are kept whole where some rank would hold a fraction;
    // a fraction of the heads or intermediate columns themselves (an
    // encoder-decoder's decoder, whose sizes differ from the encoder's that
    // the lists split) would be a weaker split than asked, so it is an error
    // (the config checks refuse such lists first: parallel_modes.cc).
    std::vector<int64_t> sizes;
    for (int64_t w : it->second)
      if (w * shape[axis] % total == 0)
        sizes.push_back(w * shape[axis] / total);
    if (sizes.size() != it->second.size()) {
      if ((name == "N" || name == "I") && !fractionalAxis)
        fractionalAxis = {v, name.str(), shape[axis], it->second};
      continue;
    }
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
    if (owner) {
      copyPlacement(owner, op);
      if (Attribute a = owner->getAttr(kBackwardAttr))
        op->setAttr(kBackwardAttr, a);
    }
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
  // A KV cache (the generation programs' "cache.*" ports) stays where its
  // attention block computes it: prefill returns it, decode takes it and
  // returns it in that layout, so the runtime keeps each rank's part between
  // programs (TP: the rank's KV heads) and no step gathers it.
  auto isCache = [](StringAttr name) {
    return name && plan::isCachePort(name.getValue().str());
  };
  for (BlockArgument arg : body.getArguments())
    setLayout(arg,
              pref(arg, regionSplits[isCache(fn.getArgAttrOfType<StringAttr>(
                                         arg.getArgNumber(), kInputAttr))
                                         ? "att"
                                         : "other"]));

  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(&op);
  for (Operation *op : ops)
    cast<PartitionOpInterface>(op).partition(*this);
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (OpOperand &o : ret->getOpOperands())
    o.set(convert(o.get(),
                  isCache(fn.getResultAttrOfType<StringAttr>(
                      o.getOperandNumber(), kOutputAttr))
                      ? pref(o.get(), regionSplits["att"])
                      : Layout::replicated(),
                  ret));
  if (fractionalAxis) {
    const FractionalAxis &f = *fractionalAxis;
    int64_t total = 0;
    for (int64_t w : f.weights)
      total += w;
    std::string list;
    llvm::raw_string_ostream os(list);
    os << "[";
    llvm::interleaveComma(f.weights, os);
    os << "]";
    return mlir::emitError(f.value.getLoc())
           << (f.name == "N" ? "head-sizes" : "inter-sizes") << " " << list
           << " would give a rank a fraction of axis " << f.name << " (extent "
           << f.extent << ", each rank's share w*" << f.extent << "/" << total
           << "): give weights whose shares of every " << f.name
           << " axis are whole";
  }
  return success();
}

void PartitionPass::runOnOperation() {
  if (world < 1) {
    getOperation().emitError("world must be at least 1");
    return signalPassFailure();
  }
  if (failed(buildSplits()))
    return signalPassFailure();
  fractionalAxis.reset();
  for (auto fn : getOperation().getOps<func::FuncOp>())
    if (failed(partition(fn)))
      return signalPassFailure();
  getOperation()->setAttr(kWorldAttr,
                          Builder(&getContext()).getI64IntegerAttr(world));
}

} // namespace
