#include "compiler/LowerToPlan.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/ArenaPlacer.h"
#include "compiler/CoalescePolicy.h"
#include "compiler/CommTiling.h"
#include "compiler/config/to_json.h"
#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "google/protobuf/arena.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Threading.h"
#include "models/registry.h"
#include "runtime/plan/kernel_schema.h"
#include "runtime/plan/plan_sizes.h"
#include "runtime/plan/size_limits.h"
#include "runtime/plan/version.h"

using namespace mlir;

namespace galaxy {
namespace {

constexpr int64_t kAlign = 64; // cache line; also what SIMD loads like

// Bytes of a buffer, checked: a shape past plan::kMaxTensorElements (or one
// whose product wraps) is an error naming the buffer, never a wrapped size.
absl::StatusOr<int64_t> bytesOf(const plan::Buffer &b) {
  std::optional<int64_t> n = plan::checkedTensorBytes(b.shape());
  if (!n)
    return absl::InvalidArgumentError(absl::StrCat(
        "buffer ", b.name(), " of shape [", absl::StrJoin(b.shape(), ", "),
        "] has more than ", plan::kMaxTensorElements,
        " elements (2^40); lower the sizes in the config"));
  return *n;
}

// sum += bytes, within plan::kMaxPlanBytes.
absl::Status addBytes(int64_t &sum, int64_t bytes, const char *what) {
  std::optional<int64_t> s = plan::checkedAdd(sum, bytes);
  if (!s || *s > plan::kMaxPlanBytes)
    return absl::InvalidArgumentError(
        absl::StrCat("the plan's ", what, " exceed ", plan::kMaxPlanBytes,
                     " bytes (2^46); lower the sizes in the config"));
  sum = *s;
  return absl::OkStatus();
}

int64_t alignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// An arena buffer's lifetime in instruction indices, inclusive at both ends so
// an instruction's outputs never share memory with its inputs.
struct Interval {
  int32_t buffer;
  int64_t begin, end, bytes;
};

// The placements lowerEachRank's ranks computed, for the ranks after them: an
// SPMD world's ranks mostly have the same buffers with the same lifetimes
// (even splits: every rank of a 70B-shaped Galaxy compile over 64), and a
// placement depends only on the sorted (begin, end, bytes) list, so the
// first rank to place a list places it and the others copy its offsets
// (the placement was a tenth of such a compile's CPU time).
class PlacementMemo {
public:
  struct Placed {
    std::vector<int64_t> offsets; // in the sorted list's order
    int64_t peak = 0;
  };
  // The placement of `key` if a rank has stored it.
  std::optional<Placed> find(const std::vector<int64_t> &key) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Entry &e : entries_)
      if (e.key == key)
        return e.placed;
    return std::nullopt;
  }
  void store(std::vector<int64_t> key, Placed placed) {
    std::lock_guard<std::mutex> lock(mu_);
    // A few distinct lists per world (rank 0's row-parallel biases, uneven
    // splits); past that each rank is likely its own and copies cost memory.
    if (entries_.size() < kMaxEntries)
      entries_.push_back({std::move(key), std::move(placed)});
  }

private:
  static constexpr size_t kMaxEntries = 8;
  struct Entry {
    std::vector<int64_t> key;
    Placed placed;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
};

// Greedy best-fit: biggest buffers first, each at the lowest offset that does
// not overlap a placed buffer whose lifetime intersects its own (ArenaPlacer:
// a scan of the placed buffers per buffer made deep models compile in
// quadratic time). `memo` (may be null) shares placements between ranks.
int64_t assignOffsets(std::vector<Interval> &live, plan::Plan &p,
                      PlacementMemo *memo) {
  std::sort(live.begin(), live.end(), [](const Interval &a, const Interval &b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.begin < b.begin;
  });
  std::vector<int64_t> key;
  if (memo) {
    key.reserve(3 * live.size());
    for (const Interval &iv : live)
      key.insert(key.end(), {iv.begin, iv.end, iv.bytes});
    if (std::optional<PlacementMemo::Placed> hit = memo->find(key)) {
      for (size_t i = 0; i < live.size(); ++i)
        p.mutable_buffers(live[i].buffer)->set_offset(hit->offsets[i]);
      return alignUp(hit->peak);
    }
  }
  int64_t steps = 0;
  for (const Interval &iv : live)
    steps = std::max(steps, iv.end + 1);
  ArenaPlacer placer(kAlign, steps);
  PlacementMemo::Placed placed;
  placed.offsets.reserve(live.size());
  for (const Interval &iv : live) {
    placed.offsets.push_back(placer.place(iv.begin, iv.end, iv.bytes));
    p.mutable_buffers(iv.buffer)->set_offset(placed.offsets.back());
  }
  placed.peak = placer.peak();
  if (memo)
    memo->store(std::move(key), std::move(placed));
  return alignUp(placer.peak());
}

bool isCollective(Operation *op) {
  return isa<AllReduceOp, AllGatherOp, ReduceScatterOp>(op);
}

// What an op reads and writes, for moving it past others (overlapOrder).
struct Effects {
  SmallVector<Value> reads, writes;
  bool movable = true;
};

// Whether an op with effects `e` and the ops that read `reads` and write
// `writes` would compute something else in the other order: it writes what
// they read or write, or reads what they write.
bool conflicts(const Effects &e, const llvm::DenseSet<Value> &reads,
               const llvm::DenseSet<Value> &writes) {
  for (Value w : e.writes)
    if (reads.contains(w) || writes.contains(w))
      return true;
  return llvm::any_of(e.reads, [&](Value r) { return writes.contains(r); });
}

// The update of a parameter whose gradient is a small all-reduce (layer-norm
// weights, biases) goes to the end of the function, and the all-reduce with
// it: in Galaxy mode ~50 such all-reduces per BERT step, one per CON
// parameter, each a latency-bound transfer of a few KiB, were most of the
// communication thread's time, and the executor waited for each at its
// update right after it. At the end the all-reduces stand together, one
// after another, and the lowering marks them as one coalesced group
// (Instr.coalesce): galaxy-run sums them as one collective. Only small
// gradients, because each sunk one stays live to the end: a data-parallel
// plan's big gradients would keep the whole model's gradient in memory. The
// decision reads only the all-reduce's own type (the same on every rank;
// every rank lowers the same module), so every rank issues the same
// collectives in the same order. An op moves only past ops that neither
// read nor write what it writes nor write what it reads, so every value
// computed is the same. `coalesced` receives the sunk all-reduces.
template <typename EffectsOf>
std::vector<Operation *> sinkSmallReducedUpdates(
    std::vector<Operation *> order, EffectsOf effectsOf,
    const llvm::DenseMap<Operation *, Operation *> &fusedGrad,
    llvm::DenseSet<Operation *> *coalesced) {
  // The all-reduce an update's gradient comes from, when it is small, f32
  // and read by that update alone (compiler/CoalescePolicy.h: the planner
  // prices the same ones as one collective).
  auto smallReduce = [&](Operation *op) -> AllReduceOp {
    return fusedGrad.count(op) ? AllReduceOp{} : coalescableReduceOf(op);
  };
  llvm::DenseSet<Operation *> candidates; // all-reduces and their updates
  for (Operation *op : order)
    if (AllReduceOp ar = smallReduce(op)) {
      candidates.insert(op);
      candidates.insert(ar.getOperation());
    }
  // A pair moves only whole: when one of them cannot, drop both and look
  // again (the candidates only shrink).
  std::vector<bool> sunk(order.size(), false);
  for (bool again = true; again;) {
    again = false;
    std::fill(sunk.begin(), sunk.end(), false);
    llvm::DenseSet<Value> laterReads, laterWrites;
    for (size_t i = order.size(); i-- > 0;) {
      Operation *op = order[i];
      auto e = effectsOf(op);
      if (isa<AllReduceOp>(op)) { // pure: reads its input, writes its value
        e.writes.clear();
        e.movable = true;
      }
      if (candidates.contains(op)) {
        if (e.movable && !conflicts(e, laterReads, laterWrites)) {
          sunk[i] = true;
          continue;
        }
        Operation *update = isa<AllReduceOp>(op) ? *op->user_begin() : op;
        candidates.erase(update);
        candidates.erase(update->getOperand(1).getDefiningOp());
        again = true;
        break;
      }
      laterReads.insert(e.reads.begin(), e.reads.end());
      laterWrites.insert(e.writes.begin(), e.writes.end());
    }
  }
  if (candidates.empty())
    return order;
  // The all-reduces first, together, then the updates.
  std::vector<Operation *> out, reduces, updates;
  out.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    Operation *op = order[i];
    if (!sunk[i])
      out.push_back(op);
    else if (isa<AllReduceOp>(op))
      reduces.push_back(op);
    else
      updates.push_back(op);
  }
  out.insert(out.end(), reduces.begin(), reduces.end());
  out.insert(out.end(), updates.begin(), updates.end());
  if (coalesced)
    coalesced->insert(reduces.begin(), reduces.end());
  return out;
}

// The ops of `window` (the ops before collective `coll`, in order) that must
// stay before it: what `coll` needs, transitively, the immovable ones, and
// every op that would move past one of these it conflicts with (reads what
// it writes, or writes what it reads or writes). The others can move past
// `coll`, together and in their order, without changing a value.
llvm::DenseSet<Operation *> pinnedBefore(ArrayRef<Operation *> window,
                                         ArrayRef<Effects> fx,
                                         Operation *coll) {
  llvm::DenseSet<Operation *> pinned{coll};
  for (size_t i = 0; i < window.size(); ++i)
    if (!fx[i].movable)
      pinned.insert(window[i]);
  for (bool changed = true; changed;) {
    changed = false;
    // What the collective needs, transitively.
    for (size_t i = window.size(); i-- > 0;) {
      if (pinned.contains(window[i]))
        continue;
      for (Operation *u : window[i]->getUsers())
        if (pinned.contains(u)) {
          pinned.insert(window[i]);
          break;
        }
    }
    // An op that would move past a pinned one it conflicts with stays.
    llvm::DenseSet<Value> laterReads(coll->operand_begin(),
                                     coll->operand_end());
    llvm::DenseSet<Value> laterWrites;
    for (size_t i = window.size(); i-- > 0;) {
      const Effects &e = fx[i];
      if (pinned.contains(window[i])) {
        laterReads.insert(e.reads.begin(), e.reads.end());
        laterWrites.insert(e.writes.begin(), e.writes.end());
        continue;
      }
      if (conflicts(e, laterReads, laterWrites)) {
        pinned.insert(window[i]);
        changed = true;
        laterReads.insert(e.reads.begin(), e.reads.end());
        laterWrites.insert(e.writes.begin(), e.writes.end());
      }
    }
  }
  pinned.erase(coll);
  return pinned;
}

// Work behind the NEXT collective. After the stretch pass, a collective's
// unpinned ops all run right after it; the next collective may then have
// nothing behind it: in Galaxy's backward a reduce-scatter has the MLP's
// (or attention's) weight-gradient GEMMs behind it, and the all-gather that
// follows, issued once the connective block's backward has read the
// reduce-scatter's result, is needed at once by the next block's input
// gradient. So for each two consecutive collectives a and b, some GEMMs
// between them that b does not need (pinnedBefore), each with what reads it
// there, move to right after b: the last k of them, with k chosen to
// maximise the smaller of the two collectives' cover (GEMM FLOPs between
// the collective and the first op that reads its result, per byte it
// moves), then their summed cover, then the fewest moved. A GEMM after a's
// first reader covers nothing of a, so it moves for free. Only GEMMs: an
// update of an earlier collective's result moved on would keep that result
// live longer for nothing (sequence parallelism's 9 MiB weight gradients).
// Costs are rank 0's (every rank decides alike; the collectives keep their
// order in any case). The coalesced all-reduces at the end stay out of it.
template <typename EffectsOf>
std::vector<Operation *> deferPastNextCollective(
    std::vector<Operation *> order, EffectsOf effectsOf,
    const llvm::DenseMap<Operation *, Operation *> &fusedGrad,
    const llvm::DenseSet<Operation *> &coalesced) {
  llvm::DenseMap<Operation *, int64_t> flops; // GEMMs only
  auto flopsOf = [&](Operation *op) -> int64_t {
    auto [it, inserted] = flops.try_emplace(op, 0);
    if (inserted && !fusedGrad.count(op) && !isCollective(op) &&
        op->getNumOperands() >= 2) // cheap test first: a GEMM has two
      if (auto cost = dyn_cast<CostOpInterface>(op))
        it->second = 2 * cost.cost(0).macs;
    return it->second;
  };
  auto bytesOf = [&](Operation *op) -> double {
    auto cost = dyn_cast<CostOpInterface>(op);
    return std::max<double>(1, cost ? cost.cost(0).commBytes : 0);
  };
  // FLOPs from order[c + 1] up to the first reader of order[c]'s result
  // (or the end), and that reader's index.
  auto cover = [&](size_t c) -> std::pair<int64_t, size_t> {
    int64_t sum = 0;
    size_t u = c + 1;
    for (; u < order.size(); ++u) {
      if (llvm::any_of(order[u]->getOperands(),
                       [&](Value v) { return v.getDefiningOp() == order[c]; }))
        break;
      sum += flopsOf(order[u]);
    }
    return {sum, u};
  };
  size_t a = 0;
  while (a < order.size() && !isCollective(order[a]))
    ++a;
  while (a < order.size()) {
    size_t b = a + 1;
    while (b < order.size() && !isCollective(order[b]))
      ++b;
    if (b == order.size())
      break;
    if (coalesced.contains(order[a]) || coalesced.contains(order[b])) {
      a = b;
      continue;
    }
    ArrayRef<Operation *> window(order.data() + a + 1, order.data() + b);
    std::vector<Effects> fx;
    for (Operation *op : window)
      fx.push_back(effectsOf(op));
    llvm::DenseSet<Operation *> pinned = pinnedBefore(window, fx, order[b]);
    // The GEMMs that may move, from the last, each with what reads it in the
    // window, transitively (it moves with them; none of it is pinned, or the
    // GEMM would be). The other ops stay (an update of an earlier
    // collective's result moving on would keep that result live longer).
    llvm::DenseMap<Operation *, size_t> at; // window op -> index into order
    for (size_t i = a + 1; i < b; ++i)
      at[order[i]] = i;
    std::vector<size_t> gemms;
    for (size_t i = a + 1; i < b; ++i)
      if (!pinned.contains(order[i]) && flopsOf(order[i]) > 0)
        gemms.push_back(i);
    auto [coverA, readerA] = cover(a);
    const int64_t coverB = cover(b).first;
    const double bytesA = bytesOf(order[a]), bytesB = bytesOf(order[b]);
    double bestMin = std::min(coverA / bytesA, coverB / bytesB);
    double bestSum = coverA / bytesA + coverB / bytesB;
    llvm::DenseSet<Operation *> moved;
    std::vector<Operation *> added; // in the order they joined `moved`
    size_t best = 0;                // how many of `added` to move
    int64_t lossA = 0, gainB = 0;
    for (size_t k = gemms.size(); k-- > 0;) {
      std::vector<Operation *> unit;
      llvm::DenseSet<Operation *> inUnit;
      SmallVector<Operation *> work{order[gemms[k]]};
      while (!work.empty()) {
        Operation *op = work.pop_back_val();
        if (moved.contains(op) || !inUnit.insert(op).second)
          continue;
        unit.push_back(op);
        for (Operation *u : op->getUsers())
          if (at.count(u))
            work.push_back(u);
      }
      // It moves past the ops after it that stay: no conflict with them.
      llvm::DenseSet<Value> reads, writes;
      for (Operation *op : unit) {
        const Effects &e = fx[at[op] - a - 1];
        reads.insert(e.reads.begin(), e.reads.end());
        writes.insert(e.writes.begin(), e.writes.end());
      }
      size_t first = at[order[gemms[k]]];
      bool conflict = false;
      for (size_t i = first + 1; i < b && !conflict; ++i)
        conflict = !inUnit.contains(order[i]) && !moved.contains(order[i]) &&
                   conflicts(fx[i - a - 1], reads, writes);
      if (conflict)
        break;
      for (Operation *op : unit) {
        moved.insert(op);
        added.push_back(op);
        int64_t f = flopsOf(op);
        gainB += f;
        // a loses the FLOPs of those before its first reader when that
        // reader comes before b (else they still run before it).
        if (at[op] < readerA && readerA <= b)
          lossA += f;
      }
      double ca = (coverA - lossA) / bytesA, cb = (coverB + gainB) / bytesB;
      double mn = std::min(ca, cb), sum = ca + cb;
      if (mn > bestMin || (mn == bestMin && sum > bestSum)) {
        best = added.size();
        bestMin = mn;
        bestSum = sum;
      }
    }
    if (best == 0) {
      a = b;
      continue;
    }
    moved.clear();
    moved.insert(added.begin(), added.begin() + best);
    std::vector<Operation *> stay, later;
    for (size_t i = a + 1; i < b; ++i)
      (moved.contains(order[i]) ? later : stay).push_back(order[i]);
    Operation *coll = order[b];
    size_t pos = a + 1;
    for (Operation *op : stay)
      order[pos++] = op;
    order[pos] = coll;
    b = pos++;
    for (Operation *op : later)
      order[pos++] = op;
    a = b;
  }
  return order;
}

// The order the ops of a function are lowered in. galaxy-run starts each
// collective on a communication thread and waits for it at the first
// instruction that touches its memory (runtime/exec/comm_overlap.h), so a
// collective should start as early and be waited for as late as the dataflow
// allows. Within each stretch of ops between two collectives, the ops the
// next collective needs (and anything that must stay before them) go first,
// then the collective, then the rest in their order: a backward collective
// then runs while the weight gradients after it are computed, and a data-
// parallel gradient all-reduce while the next gradients are. Then some of
// the rest may move on past the next collective too, where that one would
// otherwise have less behind it (deferPastNextCollective). Each move takes
// an op past ops it has no dependence on, so the values computed are the
// same; the collectives keep their order (every rank issues them alike).
// `writes` of an update (fused into its gradient op or not) is the parameter
// it changes; an op with other side effects stays in place relative to the
// collective, as does every op that reads what such an op writes later or
// writes what it reads. With comm_overlap_tiles > 1 (`tiles`) the tiling
// covers the collectives next to GEMMs (CommTiling.h), and it leaves whole a
// collective with a GEMM behind it: the deferral is left out there.
std::vector<Operation *>
overlapOrder(Block &body, const llvm::DenseSet<Operation *> &dead,
             const llvm::DenseMap<Operation *, Operation *> &fusedInto,
             const llvm::DenseMap<Operation *, Operation *> &fusedGrad,
             int64_t tiles, llvm::DenseSet<Operation *> *coalesced = nullptr) {
  auto effectsOf = [&](Operation *op) {
    Effects e;
    if (fusedGrad.count(op)) // lowered as part of its gradient op
      return e;
    e.reads.assign(op->operand_begin(), op->operand_end());
    if (auto it = fusedInto.find(op); it != fusedInto.end()) {
      if (auto upd = dyn_cast<SgdUpdateOp>(it->second))
        e.writes.push_back(upd.getParam());
      else
        e.movable = false; // accumulates into a gradient buffer
    } else if (auto upd = dyn_cast<SgdUpdateOp>(op)) {
      e.writes.push_back(upd.getParam());
    } else if (auto upd = dyn_cast<AdamwUpdateOp>(op)) {
      e.writes.push_back(upd.getParam());
    } else if (!isPure(op)) {
      e.writes = e.reads;
      e.movable = false;
    }
    return e;
  };
  std::vector<Operation *> ops;
  bool nested = false; // uses inside regions are not operands: keep order
  for (Operation &op : body.without_terminator())
    if (!dead.contains(&op)) {
      ops.push_back(&op);
      nested |= op.getNumRegions() > 0;
    }
  if (nested)
    return ops;
  std::vector<Operation *> order;
  order.reserve(ops.size());
  size_t begin = 0; // first op of the current stretch
  for (size_t c = 0; c < ops.size(); ++c) {
    if (!isCollective(ops[c]))
      continue;
    ArrayRef<Operation *> window(ops.data() + begin, ops.data() + c);
    std::vector<Effects> fx;
    for (Operation *op : window)
      fx.push_back(effectsOf(op));
    llvm::DenseSet<Operation *> pinned = pinnedBefore(window, fx, ops[c]);
    for (Operation *op : window)
      if (pinned.contains(op))
        order.push_back(op);
    order.push_back(ops[c]);
    for (Operation *op : window)
      if (!pinned.contains(op))
        order.push_back(op);
    begin = c + 1;
  }
  order.insert(order.end(), ops.begin() + begin, ops.end());
  llvm::DenseSet<Operation *> sunk;
  order = sinkSmallReducedUpdates(order, effectsOf, fusedGrad, &sunk);
  if (tiles <= 1)
    order =
        deferPastNextCollective(std::move(order), effectsOf, fusedGrad, sunk);
  if (coalesced)
    coalesced->insert(sunk.begin(), sunk.end());
  return order;
}

// One program being emitted: its instructions and arena lifetimes.
struct ProgramState {
  plan::Program *prog = nullptr;
  int64_t idx = 0;
  std::vector<Interval> live;
  llvm::DenseMap<Value, int64_t> defAt; // value -> index into live
};

class Lowering {
public:
  // Lowers into `out` (galaxyc's on a protobuf arena: building and freeing
  // a rank's plan message by message was a fifth of its time).
  Lowering(const config::GalaxyConfig &cfg, const LowerOptions &opts,
           plan::Plan &out, PlacementMemo *memo = nullptr)
      : cfg(cfg), opts(opts), p(out), memo(memo) {}
  absl::Status run(ModuleOp module);
  absl::Status runPipeline(const std::vector<StageModule> &mods,
                           const plan::Pipeline &info);

private:
  void header();
  // Lowers `fn` to program `name`; with `bwdName`, ops of the backward pass
  // (and everything computed from them) go to a second program and the values
  // it reads from the first become stash buffers.
  absl::Status lowerFunction(func::FuncOp fn, const std::string &name,
                             const std::vector<std::string> &outputNames,
                             const std::string &bwdName = "");
  // `tile`: the rows of input 0 and output 0 this instruction computes
  // (CommTiling.h); the op's results get their buffers at its first tile.
  absl::Status emitOp(Operation &op, ProgramState &st, const TileStep &tile);
  int32_t newBuffer(Value v, plan::Buffer::Kind kind, const std::string &name);
  int32_t paramIndex(ParamOp op);
  int32_t optState(int32_t param, int slot, RankedTensorType type);
  absl::Status lowerAttrs(Operation *op, plan::Instr &instr);
  absl::Status checkKernel(Operation *op, const plan::Instr &instr);
  RankLowering rankLowering(Operation &op, std::string kernel) const;
  static void applyRankAttrs(const RankLowering &k, plan::Instr &instr);
  // The plan, once every size in it passes the check galaxy-run makes on
  // loading it (parameters and totals included).
  absl::Status checked();

  const config::GalaxyConfig &cfg;
  LowerOptions opts;
  plan::Plan &p;
  PlacementMemo *memo; // shared with the other ranks; may be null
  std::map<std::string, int32_t> paramByName;
  std::map<int32_t, int32_t> paramBuffer; // param index -> PARAM buffer
  std::map<std::pair<int32_t, int>, int32_t> state; // (param, slot) -> buffer
  llvm::DenseMap<Value, int32_t> bufferOf; // within the current function
  llvm::DenseSet<Value> stash;             // values the backward program reads
  // A collective's result -> its input (see emitOp's touch).
  llvm::DenseMap<Value, Value> collectiveInput;
  // SGD steps fused into the kernel computing their gradient (the gradient's
  // only use): gradient op -> update, and update -> gradient op.
  llvm::DenseMap<Operation *, Operation *> fusedInto, fusedGrad;
  std::set<int32_t> stashPlaced; // stash buffers given an offset
  int64_t stashSlotBytes = 0;
  bool pipeline = false;
};

int32_t Lowering::newBuffer(Value v, plan::Buffer::Kind kind,
                            const std::string &name) {
  auto t = cast<RankedTensorType>(v.getType());
  Layout layout = layoutOf(v);
  plan::Buffer *b = p.add_buffers();
  b->set_id(p.buffers_size() - 1);
  b->set_name(name);
  b->set_dtype(t.getElementType().isF32() ? plan::F32 : plan::I32);
  for (int64_t d : layout.localShape(t.getShape(), opts.rank))
    b->add_shape(d);
  for (int64_t d : t.getShape())
    b->add_global_shape(d);
  for (int64_t o : layout.localOffset(t.getShape(), opts.rank))
    b->add_slice_offset(o);
  b->set_layout(layout.str());
  b->set_kind(kind);
  bufferOf[v] = b->id();
  return b->id();
}

int32_t Lowering::paramIndex(ParamOp op) {
  auto [it, inserted] =
      paramByName.try_emplace(op.getName().str(), p.params_size());
  if (inserted) {
    plan::Param *pp = p.add_params();
    pp->set_name(op.getName().str());
    Layout layout = layoutOf(op.getResult());
    auto shape = op.getType().getShape();
    auto local = layout.localShape(shape, opts.rank);
    auto offset = layout.localOffset(shape, opts.rank);
    for (size_t i = 0; i < shape.size(); ++i) {
      pp->add_global_shape(shape[i]);
      pp->add_slice_offset(offset[i]);
      pp->add_slice_shape(local[i]);
    }
    pp->set_trainable(op.getTrainable());
    pp->mutable_init()->set_kind(op.getInit().str());
    pp->mutable_init()->set_std(op.getStd().convertToDouble());
    pp->mutable_init()->set_fan_in(shape.size() >= 2 ? shape.back() : 1);
  }
  return it->second;
}

int32_t Lowering::optState(int32_t param, int slot, RankedTensorType type) {
  auto key = std::make_pair(param, slot);
  auto it = state.find(key);
  if (it != state.end())
    return it->second;
  plan::Buffer *b = p.add_buffers();
  b->set_id(p.buffers_size() - 1);
  b->set_name(absl::StrCat(p.params(param).name(), slot == 0   ? ".exp_avg"
                                                   : slot == 1 ? ".exp_avg_sq"
                                                               : ".grad_acc"));
  b->set_dtype(plan::F32);
  for (int64_t d : p.params(param).slice_shape())
    b->add_shape(d);
  b->set_kind(plan::Buffer::OPT_STATE);
  b->set_param(param);
  b->set_slot(slot);
  state[key] = b->id();
  return b->id();
}

absl::Status Lowering::lowerAttrs(Operation *op, plan::Instr &instr) {
  for (NamedAttribute na : op->getAttrs()) {
    StringRef name = na.getName().strref();
    if (name.starts_with("galaxy."))
      continue; // region annotations travel in Instr.block / backward
    plan::Attr a;
    Attribute v = na.getValue();
    if (auto b = dyn_cast<BoolAttr>(v))
      a.set_i(b.getValue());
    else if (auto i = dyn_cast<IntegerAttr>(v))
      a.set_i(i.getInt());
    else if (auto f = dyn_cast<FloatAttr>(v))
      a.set_f(f.getValueAsDouble());
    else if (auto s = dyn_cast<StringAttr>(v))
      a.set_s(s.str());
    else if (auto arr = dyn_cast<DenseI64ArrayAttr>(v))
      for (int64_t x : arr.asArrayRef())
        a.mutable_ints()->add_v(x);
    else
      return absl::InternalError(
          absl::StrCat("cannot lower attribute '", name.str(), "' of ",
                       op->getName().getStringRef().str()));
    (*instr.mutable_attrs())[name.str()] = a;
  }
  if (auto blk = op->getAttrOfType<StringAttr>(kBlockAttr)) {
    auto layer = op->getAttrOfType<IntegerAttr>(kLayerAttr);
    instr.set_block(layer && layer.getInt() >= 0
                        ? absl::StrCat(blk.str(), ".", layer.getInt())
                        : blk.str());
  }
  instr.set_backward(op->hasAttr(kBackwardAttr));
  return absl::OkStatus();
}

// What the plan says must be what galaxy-run reads: the kernel and every
// attribute written for it are in the schema (runtime/plan/kernel_schema.h,
// from the ODS), with the schema's type.
absl::Status Lowering::checkKernel(Operation *op, const plan::Instr &instr) {
  const std::string opName = op->getName().getStringRef().str();
  const schema::KernelSchema *k = schema::findKernel(instr.kernel());
  if (!k)
    return absl::InternalError(
        absl::StrCat(opName, " lowered to kernel '", instr.kernel(),
                     "', which the kernel schema does not have"));
  for (const auto &[name, value] : instr.attrs())
    if (absl::Status s = schema::checkAttr(*k, name, value); !s.ok())
      return absl::InternalError(
          absl::StrCat(opName, ", attribute '", name, "': ", s.message()));
  return absl::OkStatus();
}

// The op's rank lowering (RankLoweringOpInterface): kernel attributes that
// depend on which slice this rank computes, the kernel where the layout picks
// it, operands only some ranks apply.
RankLowering Lowering::rankLowering(Operation &op, std::string kernel) const {
  RankLowering k;
  k.kernel = std::move(kernel);
  k.keepOperand.assign(op.getNumOperands(), true);
  k.pipeline = pipeline;
  if (auto iface = dyn_cast<RankLoweringOpInterface>(op))
    iface.lowerForRank(opts.rank, k);
  return k;
}

void Lowering::applyRankAttrs(const RankLowering &k, plan::Instr &instr) {
  instr.set_kernel(k.kernel);
  auto &attrs = *instr.mutable_attrs();
  for (const auto &[name, value] : k.attrs) {
    plan::Attr &a = attrs[name];
    a.Clear();
    if (auto *i = std::get_if<int64_t>(&value))
      a.set_i(*i);
    else if (auto *f = std::get_if<double>(&value))
      a.set_f(*f);
    else if (auto *str = std::get_if<std::string>(&value))
      a.set_s(*str);
    else
      for (int64_t x : std::get<std::vector<int64_t>>(value))
        a.mutable_ints()->add_v(x);
  }
}

absl::Status Lowering::emitOp(Operation &op, ProgramState &st,
                              const TileStep &tile) {
  auto touch = [&](Value v, int64_t at) {
    auto it = st.defAt.find(v);
    if (it != st.defAt.end())
      st.live[it->second].end = std::max(st.live[it->second].end, at);
    // A collective may still be reading its input until its result is
    // first used (galaxy-run overlaps it): keep the input's memory till then.
    if (auto c = collectiveInput.find(v); c != collectiveInput.end())
      if (auto in = st.defAt.find(c->second); in != st.defAt.end())
        st.live[in->second].end = std::max(st.live[in->second].end, at);
  };
  StringRef opName = op.getName().getStringRef();
  auto accumulator = [&](Value param) {
    int32_t pi = p.buffers(bufferOf[param]).param();
    return optState(pi, 2, cast<RankedTensorType>(param.getType()));
  };
  if (auto g = dyn_cast<GradOfOp>(op)) { // no work: names the accumulator
    bufferOf[g.getResult()] = accumulator(g.getParam());
    return absl::OkStatus();
  }
  if (fusedGrad.count(&op)) // the gradient kernel did the update
    return absl::OkStatus();
  const schema::OpKernel *kernel =
      schema::kernelOfOp(opName.drop_front(strlen("galaxy.")));
  if (!kernel)
    return absl::InternalError(
        absl::StrCat(opName.str(), " is not in the kernel schema"));
  plan::Instr *instr = st.prog->add_instrs();
  const RankLowering rank = rankLowering(op, std::string(kernel->kernel));
  if (auto acc = dyn_cast<GradAccumulateOp>(op)) {
    int32_t a = accumulator(acc.getParam());
    instr->add_inputs(a);
    instr->add_inputs(bufferOf[acc.getGrad()]);
    instr->add_outputs(a);
    touch(acc.getGrad(), st.idx);
  } else if (auto z = dyn_cast<ZeroGradOp>(op)) {
    instr->add_outputs(accumulator(z.getParam()));
  } else {
    SmallVector<Value> operands;
    for (auto [v, keep] : llvm::zip(op.getOperands(), rank.keepOperand))
      if (keep)
        operands.push_back(v);
    for (Value v : operands) {
      auto it = bufferOf.find(v);
      if (it == bufferOf.end())
        return absl::InternalError(
            absl::StrCat("operand of ", opName.str(), " has no buffer"));
      instr->add_inputs(it->second);
      touch(v, st.idx);
    }
    if (auto adam = dyn_cast<AdamwUpdateOp>(op)) {
      int32_t pi = p.buffers(bufferOf[adam.getParam()]).param();
      auto t = cast<RankedTensorType>(adam.getParam().getType());
      instr->add_inputs(optState(pi, 0, t));
      instr->add_inputs(optState(pi, 1, t));
    }
    if (auto it = fusedInto.find(&op); it != fusedInto.end()) {
      // SGD fused into the gradient GEMM / scatter: p = beta·p + alpha·grad;
      // accumulation: acc = acc + grad.
      auto attrs = instr->mutable_attrs();
      if (auto upd = dyn_cast<SgdUpdateOp>(it->second)) {
        const double lr = upd.getLr().convertToDouble(),
                     wd = upd.getWeightDecay().convertToDouble();
        instr->add_outputs(bufferOf[upd.getParam()]);
        (*attrs)["alpha"].set_f(-lr);
        (*attrs)["beta"].set_f(1.0 - lr * wd);
      } else {
        instr->add_outputs(
            accumulator(cast<GradAccumulateOp>(it->second).getParam()));
        (*attrs)["alpha"].set_f(1.0);
        (*attrs)["beta"].set_f(1.0);
      }
    }
    for (Value r : fusedInto.count(&op) ? ValueRange() : op.getResults()) {
      if (auto have = bufferOf.find(r); have != bufferOf.end()) {
        instr->add_outputs(have->second); // a later tile of the op
        touch(r, st.idx);
        continue;
      }
      int32_t id =
          newBuffer(r, plan::Buffer::ARENA,
                    absl::StrCat(opName.drop_front(7).str(), "#", st.idx));
      instr->add_outputs(id);
      if (stash.contains(r)) {
        p.mutable_buffers(id)->set_stash(true);
        continue;
      }
      absl::StatusOr<int64_t> bytes = bytesOf(p.buffers(id));
      if (!bytes.ok())
        return bytes.status();
      st.defAt[r] = st.live.size();
      st.live.push_back({id, st.idx, st.idx, *bytes});
    }
  }
  if (isCollective(&op))
    collectiveInput[op.getResult(0)] = op.getOperand(0);
  if (absl::Status s = lowerAttrs(&op, *instr); !s.ok())
    return s;
  applyRankAttrs(rank, *instr);
  if (auto cost = dyn_cast<CostOpInterface>(op))
    instr->set_flops(cost.cost(opts.rank).flops);
  if (tile.tiled()) {
    plan::Tile *t = instr->mutable_tile();
    t->set_begin(tile.begin);
    t->set_count(tile.count);
    for (int32_t k : tile.inputs)
      t->add_inputs(k);
    t->add_outputs(0);
    // The tile's share of the op's FLOPs (rows are the batch items).
    const int64_t rows = p.buffers(instr->outputs(0)).shape(0);
    instr->set_flops(instr->flops() / rows * tile.count);
  }
  if (absl::Status s = checkKernel(&op, *instr); !s.ok())
    return s;
  ++st.idx;
  return absl::OkStatus();
}

absl::Status
Lowering::lowerFunction(func::FuncOp fn, const std::string &name,
                        const std::vector<std::string> &outputNames,
                        const std::string &bwdName) {
  bufferOf.clear();
  stash.clear();
  Block &body = fn.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  const bool split = !bwdName.empty();
  auto outputName = [&](unsigned i) {
    if (auto a = fn.getResultAttrOfType<StringAttr>(i, kOutputAttr))
      return a.str();
    return i < outputNames.size() ? outputNames[i] : absl::StrCat("out", i);
  };

  // Values nobody uses are dead work (Pure ops only; updates have effects).
  llvm::DenseSet<Operation *> dead;
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    if (isPure(&op) && llvm::all_of(op.getResults(), [&](Value r) {
          return llvm::all_of(r.getUsers(),
                              [&](Operation *u) { return dead.contains(u); });
        }))
      dead.insert(&op);
  }

  // Split: the backward program takes every op marked backward and whatever
  // reads their results; the rest is the forward program. Outputs named
  // pp.dgrad.* come from the backward program.
  llvm::DenseSet<Operation *> bwd;
  llvm::DenseSet<Value> bwdValues;
  std::vector<bool> bwdOutput(ret.getNumOperands(), false);
  if (split) {
    for (Operation &op : body.without_terminator())
      if (op.hasAttr(kBackwardAttr) ||
          llvm::any_of(op.getOperands(),
                       [&](Value v) { return bwdValues.contains(v); })) {
        bwd.insert(&op);
        bwdValues.insert(op.result_begin(), op.result_end());
      }
    for (unsigned i = 0; i < ret.getNumOperands(); ++i)
      bwdOutput[i] = StringRef(outputName(i)).starts_with("pp.dgrad.");
    auto readByBwd = [&](Value v) {
      for (OpOperand &use : v.getUses()) {
        Operation *u = use.getOwner();
        if ((bwd.contains(u) && !dead.contains(u)) ||
            (u == ret.getOperation() && bwdOutput[use.getOperandNumber()]))
          return true;
      }
      return false;
    };
    for (BlockArgument a : body.getArguments())
      if (readByBwd(a))
        stash.insert(a);
    for (Operation &op : body.without_terminator())
      if (!bwd.contains(&op))
        for (Value r : op.getResults())
          if (readByBwd(r) && !isa<ParamOp>(op))
            stash.insert(r);
  }

  fusedInto.clear();
  fusedGrad.clear();
  for (Operation &op : body.without_terminator())
    if (Operation *d = sgdFusedInto(&op)) {
      fusedInto[d] = &op;
      fusedGrad[&op] = d;
    }

  ProgramState fwdState, bwdState;
  fwdState.prog = p.add_programs();
  fwdState.prog->set_name(name);
  if (split) {
    bwdState.prog = p.add_programs();
    bwdState.prog->set_name(bwdName);
  }
  for (BlockArgument arg : body.getArguments()) {
    auto input =
        fn.getArgAttrOfType<StringAttr>(arg.getArgNumber(), kInputAttr);
    if (!input)
      return absl::InternalError(absl::StrCat("@", fn.getSymName().str(),
                                              " argument ", arg.getArgNumber(),
                                              " has no galaxy.input name"));
    int32_t id = newBuffer(arg, plan::Buffer::INPUT, input.str());
    p.mutable_buffers(id)->set_input(input.str());
    p.mutable_buffers(id)->set_stash(stash.contains(arg));
    // Gradient seeds arrive for the backward program; everything else
    // (batch fields, activations) is filled for the forward one.
    bool toBwd = split && input.getValue().starts_with("pp.grad.");
    auto *bind = (toBwd ? bwdState : fwdState).prog->add_inputs();
    bind->set_name(input.str());
    bind->set_buffer(id);
  }

  collectiveInput.clear();
  auto emits = [&](Operation *op) {
    return !isa<ParamOp, GradOfOp>(op) && !fusedGrad.count(op);
  };
  llvm::DenseSet<Operation *> coalesced;
  // Per program: the instructions of coalesced all-reduces, in order.
  std::map<plan::Program *, std::vector<int>> coalescedAt;
  for (const TileStep &step :
       tileForOverlap(overlapOrder(body, dead, fusedInto, fusedGrad,
                                   cfg.comm_overlap_tiles, &coalesced),
                      cfg.comm_overlap_tiles, emits)) {
    Operation &op = *step.op;
    if (auto param = dyn_cast<ParamOp>(op)) {
      int32_t pi = paramIndex(param);
      auto it = paramBuffer.find(pi);
      if (it == paramBuffer.end()) {
        int32_t id =
            newBuffer(param, plan::Buffer::PARAM, param.getName().str());
        p.mutable_buffers(id)->set_param(pi);
        paramBuffer[pi] = id;
      } else {
        bufferOf[param] = it->second;
      }
      continue;
    }
    ProgramState &st = bwd.contains(&op) ? bwdState : fwdState;
    const int at = st.prog->instrs_size();
    if (absl::Status s = emitOp(op, st, step); !s.ok())
      return s;
    if (coalesced.contains(&op) && !step.tiled() &&
        st.prog->instrs_size() == at + 1)
      coalescedAt[st.prog].push_back(at);
  }
  // Each run of consecutive ones is one group.
  for (auto &[prog, at] : coalescedAt)
    for (size_t i = 0, j; i < at.size(); i = j) {
      for (j = i + 1; j < at.size() && at[j] == at[j - 1] + 1;)
        ++j;
      if (j - i > 1)
        prog->mutable_instrs(at[i])->set_coalesce(static_cast<int32_t>(j - i));
    }
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    ProgramState &st = bwdOutput[i] ? bwdState : fwdState;
    if (auto it = st.defAt.find(v); it != st.defAt.end()) // live to the end
      st.live[it->second].end = std::max(st.live[it->second].end, st.idx);
    if (auto c = collectiveInput.find(v); c != collectiveInput.end())
      if (auto in = st.defAt.find(c->second); in != st.defAt.end())
        st.live[in->second].end = std::max(st.live[in->second].end, st.idx);
    auto *bind = st.prog->add_outputs();
    bind->set_name(outputName(i));
    bind->set_buffer(bufferOf[v]);
  }

  // Stash buffers: one after another in a microbatch's slot (all of them
  // are live together, from the end of the forward to the backward).
  int64_t slot = 0;
  for (plan::Buffer &b : *p.mutable_buffers())
    if (b.stash() && !stashPlaced.count(b.id())) {
      stashPlaced.insert(b.id());
      b.set_offset(slot);
      absl::StatusOr<int64_t> bytes = bytesOf(b);
      if (!bytes.ok())
        return bytes.status();
      if (absl::Status s = addBytes(slot, alignUp(*bytes), "stash buffers");
          !s.ok())
        return s;
    }
  stashSlotBytes = std::max(stashSlotBytes, slot);

  for (ProgramState *st : {&fwdState, &bwdState}) {
    if (!st->prog)
      continue;
    // Every offset assignOffsets picks is below the unshared total, so
    // bounding that total bounds all of its arithmetic.
    int64_t unshared = 0;
    for (const Interval &iv : st->live)
      if (absl::Status s = addBytes(unshared, alignUp(iv.bytes), "activations");
          !s.ok())
        return s;
    int64_t total = p.unshared_bytes();
    if (absl::Status s = addBytes(total, unshared, "activations"); !s.ok())
      return s;
    st->prog->set_arena_bytes(assignOffsets(st->live, p, memo));
    p.set_unshared_bytes(total);
    p.set_arena_bytes(std::max(p.arena_bytes(), st->prog->arena_bytes()));
  }
  return absl::OkStatus();
}

void Lowering::header() {
  p.set_format_version(plan::kPlanFormatVersion);
  p.set_rank(opts.rank);
  p.set_world(opts.world);
  plan::ModelInfo *m = p.mutable_model();
  m->set_model(cfg.model_type);
  m->set_task(cfg.task);
  m->set_batch_size(cfg.batch_size);
  m->set_seq_len(cfg.pad_size);
  m->set_num_classes(cfg.num_classes);
  m->set_vocab_size(cfg.vocab_size);
  m->set_pad_id(cfg.pad_token_id);
  // An encoder-decoder model: the data builds its decoder inputs (a
  // side-only plan reads only their mask: the decoder's taps replace the ids).
  if (const models::ModelSpec *spec = models::findModel(cfg.model_type))
    for (const models::ModelInput &in : spec->inputs(cfg))
      if (in.name == "decoder_attention_mask") {
        m->set_target_seq_len(in.shape.at(1));
        m->set_decoder_start_id(cfg.decoder_start_token_id);
        m->set_eos_id(cfg.eos_token_id);
      }
  plan::Optimizer *o = p.mutable_optimizer();
  o->set_kind(cfg.optimizer == config::Optimizer::kAdamW ? "adamw" : "sgd");
  o->set_learning_rate(cfg.learning_rate);
  o->set_weight_decay(cfg.weight_decay);
  o->set_beta1(cfg.adam_beta1);
  o->set_beta2(cfg.adam_beta2);
  o->set_epsilon(cfg.adam_epsilon);
  p.set_config_json(config::toJson(cfg));
  // Every plan kind (serial, SPMD, pipeline stage) comes through here.
  p.set_matmul_dtype(cfg.dtype == config::DType::kBF16 ? plan::MATMUL_BF16
                                                       : plan::MATMUL_F32);
}

absl::Status Lowering::checked() {
  absl::StatusOr<plan::PlanMemory> mem =
      plan::checkPlanSizes(p, absl::StrCat("the plan of rank ", opts.rank));
  if (!mem.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        mem.status().message(), "; lower the sizes in the config"));
  return absl::OkStatus();
}

absl::Status Lowering::run(ModuleOp module) {
  header();
  auto train = module.lookupSymbol<func::FuncOp>("train_step");
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return absl::InvalidArgumentError("the module has no @forward to lower");
  if (train)
    if (absl::Status s = lowerFunction(train, "train_step", {"loss"}); !s.ok())
      return s;
  if (absl::Status s = lowerFunction(forward, "eval_step", {"loss", "logits"});
      !s.ok())
    return s;
  // Generation programs (a causal LM's KV-cache prefill and decode, BART's
  // encode and decode); their outputs carry their names.
  for (const char *name : {"prefill", "encode", "decode"})
    if (auto fn = module.lookupSymbol<func::FuncOp>(name))
      if (absl::Status s = lowerFunction(fn, name, {}); !s.ok())
        return s;
  return checked();
}

absl::Status Lowering::runPipeline(const std::vector<StageModule> &mods,
                                   const plan::Pipeline &info) {
  pipeline = true;
  header();
  *p.mutable_pipeline() = info;
  for (auto [i, m] : llvm::enumerate(mods)) {
    ModuleOp module = m.module;
    auto train = module.lookupSymbol<func::FuncOp>("train_step");
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    auto update = module.lookupSymbol<func::FuncOp>("update");
    if (!forward)
      return absl::InvalidArgumentError("the module has no @forward to lower");
    const std::string b = absl::StrCat(".b", m.rows);
    if (train)
      if (absl::Status s =
              lowerFunction(train, "train_fwd" + b, {"loss"}, "train_bwd" + b);
          !s.ok())
        return s;
    if (absl::Status s =
            lowerFunction(forward, "eval_step" + b, {"loss", "logits"});
        !s.ok())
      return s;
    if (i == 0 && update)
      if (absl::Status s = lowerFunction(update, "update", {}); !s.ok())
        return s;
  }
  p.mutable_pipeline()->set_stash_slot_bytes(stashSlotBytes);
  return checked();
}

} // namespace

std::vector<Operation *> loweringOrder(Block &body,
                                       const llvm::DenseSet<Operation *> &dead,
                                       int64_t tiles) {
  llvm::DenseMap<Operation *, Operation *> fusedInto, fusedGrad;
  for (Operation &op : body.without_terminator())
    if (Operation *d = sgdFusedInto(&op)) {
      fusedInto[d] = &op;
      fusedGrad[&op] = d;
    }
  return overlapOrder(body, dead, fusedInto, fusedGrad, tiles);
}

std::vector<TileStep> loweringSteps(Block &body,
                                    const llvm::DenseSet<Operation *> &dead,
                                    int64_t tiles) {
  llvm::DenseSet<Operation *> fusedGrad;
  for (Operation &op : body.without_terminator())
    if (sgdFusedInto(&op))
      fusedGrad.insert(&op);
  return tileForOverlap(
      loweringOrder(body, dead, tiles), tiles, [&](Operation *op) {
        return !isa<ParamOp, GradOfOp>(op) && !fusedGrad.contains(op);
      });
}

absl::StatusOr<plan::Plan>
lowerPipelineStage(const std::vector<StageModule> &modules,
                   const config::GalaxyConfig &cfg, const LowerOptions &opts,
                   const plan::Pipeline &info) {
  plan::Plan p;
  if (absl::Status s = Lowering(cfg, opts, p).runPipeline(modules, info);
      !s.ok())
    return s;
  return p;
}

absl::StatusOr<plan::Plan> lowerToPlan(ModuleOp module,
                                       const config::GalaxyConfig &cfg,
                                       const LowerOptions &opts) {
  plan::Plan p;
  if (absl::Status s = Lowering(cfg, opts, p).run(module); !s.ok())
    return s;
  return p;
}

absl::Status
lowerEachRank(ModuleOp module, const config::GalaxyConfig &cfg, int world,
              const std::function<absl::Status(plan::Plan &&)> &consume) {
  std::vector<absl::Status> status(world);
  PlacementMemo memo;
  mlir::parallelFor(module.getContext(), 0, world, [&](size_t r) {
    google::protobuf::ArenaOptions blocks;
    blocks.start_block_size = 1 << 16;
    blocks.max_block_size = 1 << 22;
    google::protobuf::Arena arena(blocks);
    plan::Plan *p = google::protobuf::Arena::CreateMessage<plan::Plan>(&arena);
    status[r] =
        Lowering(cfg, {static_cast<int>(r), world}, *p, &memo).run(module);
    if (status[r].ok())
      status[r] = consume(std::move(*p));
  });
  for (absl::Status &s : status)
    if (!s.ok())
      return s;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<plan::Plan>>
lowerAllRanks(ModuleOp module, const config::GalaxyConfig &cfg, int world) {
  std::vector<plan::Plan> plans(world);
  absl::Status s = lowerEachRank(module, cfg, world, [&](plan::Plan &&p) {
    const int r = p.rank();
    plans[r] = std::move(p);
    return absl::OkStatus();
  });
  if (!s.ok())
    return s;
  return plans;
}

ArenaReport arenaReport(const plan::Plan &p) {
  return {p.arena_bytes(), p.unshared_bytes()};
}

} // namespace galaxy
