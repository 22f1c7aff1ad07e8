#include "compiler/planner/work.h"

#include "compiler/CoalescePolicy.h"
#include "compiler/profile/counting_rules.h"
#include "galaxy/GalaxyDialect.h"
#include "galaxy/OpRules.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace galaxy::planner {

Work &Work::operator+=(const Work &o) {
  gemmFlops += o.gemmFlops;
  gemmFlopsPerRow += o.gemmFlopsPerRow;
  otherFlops += o.otherFlops;
  otherBytes += o.otherBytes;
  optFlops += o.optFlops;
  optBytes += o.optBytes;
  reduceCount += o.reduceCount;
  reduceBytes += o.reduceBytes;
  gatherCount += o.gatherCount;
  gatherBytes += o.gatherBytes;
  coalescedCount += o.coalescedCount;
  coalescedBytes += o.coalescedBytes;
  coalescedGroups += o.coalescedGroups;
  return *this;
}

Work Work::scaled(double k) const {
  Work w = *this;
  for (double *f : {&w.gemmFlops, &w.gemmFlopsPerRow, &w.otherFlops,
                    &w.otherBytes, &w.optFlops, &w.optBytes, &w.reduceCount,
                    &w.reduceBytes, &w.gatherCount, &w.gatherBytes,
                    &w.coalescedCount, &w.coalescedBytes, &w.coalescedGroups})
    *f *= k;
  return w;
}

Work operator+(Work a, const Work &b) { return a += b; }
Work operator-(Work a, const Work &b) { return a += b.scaled(-1); }

namespace {

// A GEMM's M: the rows of its first operand (linear's x, linear_weight_grad's
// dy, matmul's left side), every dim but the last; 0 when not ranked.
double activationRows(mlir::Operation &op, int rank) {
  if (op.getNumOperands() == 0)
    return 0;
  const std::vector<int64_t> shape = localShape(op.getOperand(0), rank);
  if (shape.empty())
    return 0;
  double rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    rows *= static_cast<double>(shape[i]);
  return rows;
}

std::map<std::string, Work> walkFunc(mlir::func::FuncOp fn, int rank) {
  std::map<std::string, Work> out;
  if (!fn)
    return out;
  bool coalesced = false;
  for (mlir::Operation &op : fn.getBody().front().without_terminator()) {
    if (llvm::isa<ParamOp>(op))
      continue;
    auto blockAttr = op.getAttrOfType<mlir::StringAttr>(kBlockAttr);
    auto layerAttr = op.getAttrOfType<mlir::IntegerAttr>(kLayerAttr);
    std::string block = blockAttr ? blockAttr.str() : "other";
    if (layerAttr && layerAttr.getInt() >= 0)
      block = "layer." + block;
    OpCost c = profile::costOf(&op, rank);
    Work &w = out[block];
    if (c.optFlops > 0) {
      w.optFlops += c.optFlops;
      w.optBytes += c.memBytes;
    } else if (isCoalescableReduce(&op)) {
      coalesced = true;
      w.coalescedCount += 1;
      w.coalescedBytes += c.commBytes;
    } else if (llvm::isa<AllReduceOp>(op)) {
      w.reduceCount += 1;
      w.reduceBytes += c.commBytes;
    } else if (llvm::isa<AllGatherOp, ReduceScatterOp>(op)) {
      w.gatherCount += 1;
      w.gatherBytes += c.commBytes;
    } else if (c.macs > 0) {
      w.gemmFlops += c.flops;
      if (const double rows = activationRows(op, rank); rows > 0)
        w.gemmFlopsPerRow += c.flops / rows;
    } else {
      w.otherFlops += c.flops;
      w.otherBytes += c.memBytes;
    }
  }
  if (coalesced)
    out[kCoalescedBlock].coalescedGroups = 1;
  return out;
}

} // namespace

std::map<std::string, Work> walkRank(mlir::ModuleOp module, int rank,
                                     bool forwardOnly) {
  auto fn = module.lookupSymbol<mlir::func::FuncOp>(forwardOnly ? "forward"
                                                                : "train_step");
  if (!fn)
    fn = module.lookupSymbol<mlir::func::FuncOp>("forward");
  return walkFunc(fn, rank);
}

std::map<std::string, Work> walkFunction(mlir::ModuleOp module,
                                         llvm::StringRef name, int rank) {
  return walkFunc(module.lookupSymbol<mlir::func::FuncOp>(name), rank);
}

Work total(const std::map<std::string, Work> &blocks) {
  Work t;
  for (const auto &[name, w] : blocks)
    t += w;
  return t;
}

} // namespace galaxy::planner
