// Walks one function of the partitioned module in the order the lowering emits
// instructions, so every op node can name its plan instructions.
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "compiler/LowerToPlan.h"
#include "compiler/profile/counting_rules.h"
#include "compiler/profile/profile.h"
#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "nlohmann/json.hpp"
#include "llvm/ADT/DenseSet.h"

namespace galaxy::profile {

Figures &Figures::operator+=(const Figures &o) {
  params += o.params;
  trainable += o.trainable;
  fwdMacs += o.fwdMacs;
  fwdFlops += o.fwdFlops;
  bwdMacs += o.bwdMacs;
  bwdFlops += o.bwdFlops;
  optFlops += o.optFlops;
  commBytes += o.commBytes;
  ops += o.ops;
  return *this;
}

const Node *findNode(const Node &root, const std::vector<std::string> &path) {
  const Node *n = &root;
  for (const std::string &step : path) {
    const Node *next = nullptr;
    for (const Node &c : n->children)
      if (c.name == step)
        next = &c;
    if (!next)
      return nullptr;
    n = next;
  }
  return n;
}

namespace {

Node &child(Node &parent, const std::string &name, const char *kind) {
  for (Node &c : parent.children)
    if (c.name == name)
      return c;
  parent.children.push_back(Node{name, kind, {}, {}, {}});
  return parent.children.back();
}

// Inner nodes hold the sums of their children.
void sumUp(Node &n) {
  if (n.children.empty())
    return;
  n.fig = {};
  n.globalParams = n.globalTrainable = 0;
  for (Node &c : n.children) {
    sumUp(c);
    n.fig += c.fig;
    n.globalParams += c.globalParams;
    n.globalTrainable += c.globalTrainable;
  }
}

// Pure ops whose results only dead ops use; the lowering drops them, so do we.
llvm::DenseSet<mlir::Operation *> deadOps(mlir::Block &body) {
  llvm::DenseSet<mlir::Operation *> dead;
  for (mlir::Operation &op : llvm::reverse(body.without_terminator())) {
    bool pure = !llvm::isa<SgdUpdateOp, AdamwUpdateOp>(op);
    if (pure && llvm::all_of(op.getResults(), [&](mlir::Value r) {
          return llvm::all_of(r.getUsers(), [&](mlir::Operation *u) {
            return dead.contains(u);
          });
        }))
      dead.insert(&op);
  }
  return dead;
}

int64_t elems(const google::protobuf::RepeatedField<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// The largest total size of optimizer-update gradients alive at one
// instruction.
int64_t liveGradientPeak(const plan::Plan &p, const plan::Program &prog) {
  std::map<int32_t, std::pair<int, int>> life; // buffer -> [def, last use]
  std::set<int32_t> grads;
  for (int i = 0; i < prog.instrs_size(); ++i) {
    const plan::Instr &in = prog.instrs(i);
    for (int32_t id : in.outputs())
      life.try_emplace(id, i, i);
    for (int32_t id : in.inputs())
      if (auto it = life.find(id); it != life.end())
        it->second.second = i;
    if ((in.kernel() == "sgd_update" || in.kernel() == "adamw_update") &&
        in.inputs_size() > 1)
      grads.insert(in.inputs(1));
  }
  std::map<int, int64_t> delta; // instruction -> change in live bytes
  for (int32_t id : grads) {
    auto it = life.find(id);
    if (it == life.end())
      continue;
    int64_t bytes = 4 * elems(p.buffers(id).shape());
    delta[it->second.first] += bytes;
    delta[it->second.second + 1] -= bytes;
  }
  int64_t live = 0, peak = 0;
  for (auto &[i, d] : delta)
    peak = std::max(peak, live += d);
  return peak;
}

Memory memoryOf(const plan::Plan &p, const plan::Program &prog) {
  Memory m;
  for (const plan::Param &pp : p.params()) {
    int64_t bytes = 4 * elems(pp.slice_shape());
    m.weights += bytes;
    if (pp.trainable())
      m.gradients += bytes;
  }
  for (const plan::Buffer &b : p.buffers())
    if (b.kind() == plan::Buffer::OPT_STATE)
      m.optimizerState += 4 * elems(b.shape());
  for (const plan::Binding &in : prog.inputs())
    m.inputs += 4 * elems(p.buffers(in.buffer()).shape());
  m.activationArena = p.arena_bytes();
  m.gradientsLive = liveGradientPeak(p, prog);
  m.peak = m.weights + m.optimizerState + m.inputs + m.activationArena;
  return m;
}

} // namespace

absl::StatusOr<RankProfile> profileRank(mlir::ModuleOp module,
                                        const plan::Plan &plan) {
  RankProfile rp;
  rp.rank = plan.rank();
  rp.world = plan.world();
  if (rp.world < 1 || rp.rank < 0 || rp.rank >= rp.world)
    return absl::InvalidArgumentError(
        absl::StrCat("plan has rank ", rp.rank, " outside world ", rp.world));
  auto fn = module.lookupSymbol<mlir::func::FuncOp>("train_step");
  rp.program = "train_step";
  if (!fn) {
    fn = module.lookupSymbol<mlir::func::FuncOp>("forward");
    rp.program = "eval_step";
  }
  if (!fn)
    return absl::InvalidArgumentError(
        "the module has neither @train_step nor @forward");
  const plan::Program *prog = nullptr;
  for (const plan::Program &pr : plan.programs())
    if (pr.name() == rp.program)
      prog = &pr;
  if (!prog)
    return absl::InvalidArgumentError(absl::StrCat(
        "the plan of rank ", rp.rank, " has no '", rp.program,
        "' program; lower it from the same module the profile reads"));

  rp.tree = Node{"model", "model", {}, {}, {}};
  std::set<std::string> seenParams, uncounted;
  std::map<std::pair<std::string, bool>, CommOp> comm;
  mlir::Block &body = fn.getBody().front();
  auto dead = deadOps(body);
  llvm::DenseMap<mlir::Operation *, std::vector<ParamOp>> owned;
  for (mlir::Operation &op : body.without_terminator())
    if (!dead.contains(&op) && !llvm::isa<ParamOp>(op))
      for (mlir::Value v : op.getOperands())
        if (auto param = v.getDefiningOp<ParamOp>())
          if (seenParams.insert(param.getName().str()).second)
            owned[&op].push_back(param);
  int instr = 0;
  // The plan's comm_overlap_tiles (its resolved config): tiled ops become
  // one instruction per tile.
  const nlohmann::json cfg =
      nlohmann::json::parse(plan.config_json(), nullptr, false);
  const int64_t tiles =
      cfg.is_object() ? cfg.value("comm_overlap_tiles", int64_t{1}) : 1;
  // In the lowering's order, so op nodes name the instructions they became.
  for (const TileStep &step : loweringSteps(body, dead, tiles)) {
    mlir::Operation &op = *step.op;
    if (llvm::isa<ParamOp>(op))
      continue;
    auto blockAttr = op.getAttrOfType<mlir::StringAttr>(kBlockAttr);
    auto layerAttr = op.getAttrOfType<mlir::IntegerAttr>(kLayerAttr);
    std::string block = blockAttr ? blockAttr.str() : "other";
    int64_t layer = layerAttr ? layerAttr.getInt() : -1;
    std::string group = layer >= 0 ? absl::StrCat("layer.", layer) : block;
    std::string kind = op.getName().getStringRef().str();
    if (llvm::StringRef(kind).starts_with("galaxy."))
      kind = kind.substr(7);
    Node &leaf = child(child(child(rp.tree, group, "group"), block, "block"),
                       kind, "op");
    // A fused SGD step runs inside its gradient's instruction: its FLOPs
    // count, it is no instruction of its own.
    if (!sgdFusedInto(&op))
      leaf.instrs.push_back(instr++);
    if (step.begin > 0)
      continue; // a later tile: the op counts once, at its first
    if (!sgdFusedInto(&op))
      leaf.fig.ops += 1;

    OpCost c = costOf(&op, rp.rank);
    if (!c.known)
      uncounted.insert(kind);
    bool backward = op.hasAttr(kBackwardAttr);
    (backward ? leaf.fig.bwdMacs : leaf.fig.fwdMacs) += c.macs;
    (backward ? leaf.fig.bwdFlops : leaf.fig.fwdFlops) += c.flops;
    leaf.fig.optFlops += c.optFlops;
    if (c.commBytes > 0 ||
        llvm::isa<AllReduceOp, AllGatherOp, ReduceScatterOp>(op)) {
      leaf.fig.commBytes += c.commBytes;
      CommOp &co = comm[{kind, backward}];
      co.kind = kind;
      co.backward = backward;
      co.count += 1;
      co.bytes += c.commBytes;
    }
    // A parameter belongs to the op that first uses it in the function
    // (its forward consumer).
    for (ParamOp param : owned[&op]) {
      auto shape = param.getType().getShape();
      int64_t local = 1, global = 1;
      for (int64_t d : layoutOf(param.getResult()).localShape(shape, rp.rank))
        local *= d;
      for (int64_t d : shape)
        global *= d;
      leaf.fig.params += local;
      leaf.globalParams += global;
      if (param.getTrainable()) {
        leaf.fig.trainable += local;
        leaf.globalTrainable += global;
      }
    }
  }
  if (instr != prog->instrs_size())
    return absl::InternalError(absl::StrCat(
        "profile of rank ", rp.rank, " counted ", instr, " ops in @",
        fn.getSymName().str(), " but the plan's '", rp.program, "' has ",
        prog->instrs_size(),
        " instructions; the plan must be lowered from this module"));
  sumUp(rp.tree);
  rp.fig = rp.tree.fig;
  for (bool bwd : {false, true})
    for (auto &[key, co] : comm)
      if (key.second == bwd)
        rp.comm.push_back(co);
  rp.memory = memoryOf(plan, *prog);
  rp.uncounted.assign(uncounted.begin(), uncounted.end());
  return rp;
}

} // namespace galaxy::profile
