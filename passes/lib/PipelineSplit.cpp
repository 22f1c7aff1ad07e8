//===- PipelineSplit.cpp - cut @forward down to one pipeline stage --------===//
#include "galaxy/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"

#include <set>

namespace galaxy {
#define GEN_PASS_DEF_PIPELINESPLIT
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {

struct PipelineSplitPass : galaxy::impl::PipelineSplitBase<PipelineSplitPass> {
  using PipelineSplitBase::PipelineSplitBase;
  void runOnOperation() override;
};

void PipelineSplitPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn) {
    module.emitError("galaxy-pipeline needs a func.func @forward");
    return signalPassFailure();
  }
  const int stages = stageLayers.size();
  if (stages < 1 || stage < 0 || stage >= stages) {
    module.emitError() << "galaxy-pipeline: stage " << stage
                       << " is outside the " << stages
                       << " stages of stage-layers";
    return signalPassFailure();
  }
  // The stages must cover the model's layer sequence exactly.
  if (auto total = module->getAttrOfType<IntegerAttr>(kNumLayersAttr)) {
    int64_t sum = 0;
    for (int64_t n : stageLayers)
      sum += n;
    if (sum != total.getInt()) {
      module.emitError() << "galaxy-pipeline: stage-layers sum to " << sum
                         << " but the model's layer sequence has "
                         << total.getInt() << " layers";
      return signalPassFailure();
    }
  }
  // First layer of each stage; layer l belongs to the last stage whose first
  // layer is <= l.
  std::vector<int64_t> first(stages + 1, 0);
  for (int s = 0; s < stages; ++s)
    first[s + 1] = first[s] + stageLayers[s];
  auto stageOf = [&](Operation *op) -> int {
    auto layer = op->getAttrOfType<IntegerAttr>(kLayerAttr);
    if (layer && layer.getInt() >= 0) {
      for (int s = stages - 1; s >= 0; --s)
        if (layer.getInt() >= first[s])
          return s;
      return 0;
    }
    return -1; // outside the layer sequence: placed below
  };

  Block &body = fn.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  llvm::DenseMap<Operation *, int> opStage;
  // Values computed from inputs alone: recomputed by every stage that reads
  // them instead of being sent.
  llvm::DenseSet<Value> inputOnly;
  for (BlockArgument a : body.getArguments())
    inputOnly.insert(a);
  // Ops outside the layer sequence (pooler, head, loss, a side network's
  // ends) run as early as their operands allow; a parameter outside a layer
  // lives where it is read. Those computed from inputs and parameters alone
  // (embeddings: BART's decoder embedding too) run where they are first read,
  // below, so each embedding lands on the stage of its first layer.
  llvm::DenseSet<Operation *> layerFree;
  for (Operation &op : body.without_terminator()) {
    int s = stageOf(&op);
    if (s < 0 && !isa<ParamOp>(op)) {
      s = 0;
      bool free = true;
      for (Value v : op.getOperands())
        if (Operation *d = v.getDefiningOp(); d && !isa<ParamOp>(d)) {
          s = std::max(s, opStage[d]);
          free = free && layerFree.contains(d);
        }
      if (free)
        layerFree.insert(&op);
    }
    opStage[&op] = s;
    if (!isa<ParamOp>(op) && op.getNumResults() &&
        llvm::all_of(op.getOperands(),
                     [&](Value v) { return inputOnly.contains(v); }))
      for (Value r : op.getResults())
        inputOnly.insert(r);
  }

  // Users come later in program order: walking backwards, each user's stage
  // is final. (An op outside the layers that reads a layer-free op without
  // being one also reads a layer's result: its stage, at least that layer's,
  // does not depend on where the layer-free op runs.)
  for (Operation &op : llvm::reverse(body.without_terminator()))
    if (layerFree.contains(&op)) {
      int s = stages - 1;
      for (Operation *user : op.getUsers())
        if (user != ret.getOperation())
          s = std::min(s, opStage[user]);
      opStage[&op] = s;
    }

  for (Operation &op : body.without_terminator())
    if (opStage[&op] < 0) {
      int s = stages - 1;
      for (Operation *user : op.getUsers())
        if (user != ret.getOperation())
          s = std::min(s, opStage[user]);
      opStage[&op] = s;
    }

  // One param op lives on one stage. Param ops of one name on several stages
  // (a tied embedding and LM head) each become a copy on their stage; the
  // runtime sums the copies' gradients before each update, so they stay equal.
  llvm::StringMap<std::set<int>> stagesOfName;
  for (Operation &op : body.without_terminator()) {
    auto p = dyn_cast<ParamOp>(op);
    if (!p)
      continue;
    for (Operation *user : p->getUsers())
      if (opStage[user] != opStage[&op]) {
        p.emitError() << "parameter " << p.getName() << " is read by stages "
                      << opStage[&op] << " and " << opStage[user]
                      << "; a pipeline keeps each parameter op on one stage";
        return signalPassFailure();
      }
    stagesOfName[p.getName()].insert(opStage[&op]);
  }
  SmallVector<NamedAttribute> tied;
  for (const auto &[name, on] : stagesOfName)
    if (on.size() > 1 && on.count(stage))
      tied.push_back(NamedAttribute(
          StringAttr::get(module.getContext(), name),
          DenseI64ArrayAttr::get(module.getContext(),
                                 SmallVector<int64_t>(on.begin(), on.end()))));

  // Crossing values per boundary b (between stage b and b+1), in program
  // order: defined by a parameter-dependent op of stage <= b, read at > b.
  std::vector<SmallVector<Value>> crossing(std::max(stages - 1, 0));
  for (Operation &op : body.without_terminator()) {
    for (Value r : op.getResults()) {
      if (inputOnly.contains(r))
        continue;
      int last = -1;
      for (Operation *user : r.getUsers())
        last = std::max(last, user == ret ? stages - 1 : opStage[user]);
      for (int b = opStage[&op]; b < last; ++b)
        crossing[b].push_back(r);
    }
  }

  // The ops this stage runs: its own, plus the input-only ops they (or its
  // outputs) read, transitively.
  llvm::DenseSet<Operation *> keep;
  SmallVector<Operation *> work;
  for (Operation &op : body.without_terminator())
    if (opStage[&op] == stage) {
      keep.insert(&op);
      work.push_back(&op);
    }
  while (!work.empty()) {
    Operation *op = work.pop_back_val();
    for (Value v : op->getOperands())
      if (Operation *d = v.getDefiningOp();
          d && inputOnly.contains(v) && keep.insert(d).second)
        work.push_back(d);
  }

  // New signature: the inputs the kept ops read, then pp.in.K.
  OpBuilder b(module.getContext());
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<Value> oldArgs;
  for (BlockArgument a : body.getArguments())
    if (llvm::any_of(a.getUsers(), [&](Operation *u) {
          return keep.contains(u) || (u == ret && stage == stages - 1);
        })) {
      oldArgs.push_back(a);
      argTypes.push_back(a.getType());
      argAttrs.push_back(fn.getArgAttrDict(a.getArgNumber()));
    }
  SmallVector<Value> inValues =
      stage > 0 ? crossing[stage - 1] : SmallVector<Value>();
  for (auto [k, v] : llvm::enumerate(inValues)) {
    argTypes.push_back(v.getType());
    argAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(kInputAttr,
                        b.getStringAttr("pp.in." + std::to_string(k))),
         b.getNamedAttr(kDimsAttr, argDimsAttr(b.getContext(), dimsOf(v)))}));
  }
  SmallVector<Value> outValues = stage + 1 < stages
                                     ? crossing[stage]
                                     : SmallVector<Value>(ret.getOperands());
  SmallVector<Type> resultTypes;
  SmallVector<DictionaryAttr> resAttrs;
  for (auto [k, v] : llvm::enumerate(outValues)) {
    resultTypes.push_back(v.getType());
    std::string name = stage + 1 < stages ? "pp.out." + std::to_string(k)
                       : k == 0           ? "loss"
                       : k == 1           ? "logits"
                                          : "out" + std::to_string(k);
    resAttrs.push_back(b.getDictionaryAttr(
        b.getNamedAttr(kOutputAttr, b.getStringAttr(name))));
  }

  b.setInsertionPoint(fn);
  auto stageFn = b.create<func::FuncOp>(
      fn.getLoc(), "forward", b.getFunctionType(argTypes, resultTypes));
  stageFn.setAllArgAttrs(argAttrs);
  stageFn.setAllResultAttrs(resAttrs);
  Block *nb = stageFn.addEntryBlock();
  IRMapping map;
  for (auto [i, a] : llvm::enumerate(oldArgs))
    map.map(a, nb->getArgument(i));
  for (auto [k, v] : llvm::enumerate(inValues))
    map.map(v, nb->getArgument(oldArgs.size() + k));
  OpBuilder nbld = OpBuilder::atBlockEnd(nb);
  for (Operation &op : body.without_terminator()) {
    if (!keep.contains(&op))
      continue;
    for (Value v : op.getOperands())
      if (!map.contains(v)) {
        Operation *d = v.getDefiningOp();
        op.emitError() << "galaxy-pipeline: " << op.getName() << " (stage "
                       << int(stage) << ") reads a value of stage "
                       << (d ? opStage[d] : -1)
                       << "; a pipeline's data must flow from earlier stages "
                          "to later ones";
        stageFn.erase();
        return signalPassFailure();
      }
    nbld.clone(op, map);
  }
  SmallVector<Value> results;
  for (Value v : outValues) {
    Value m = map.lookupOrNull(v);
    if (!m) {
      fn.emitError() << "galaxy-pipeline: stage " << stage
                     << " returns a value it neither computes nor receives";
      return signalPassFailure();
    }
    results.push_back(m);
  }
  nbld.create<func::ReturnOp>(fn.getLoc(), results);
  fn.erase();
  module->setAttr("galaxy.pipeline",
                  b.getDenseI64ArrayAttr({int64_t(stage), int64_t(stages)}));
  if (!tied.empty())
    module->setAttr(kPipelineTiedAttr, b.getDictionaryAttr(tied));
}

} // namespace
