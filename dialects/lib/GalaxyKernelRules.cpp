//===- GalaxyKernelRules.cpp - each op as a kernel on one rank ------------===//
//
// CostOpInterface for the ops whose cost is not a per-element trait, and
// RankLoweringOpInterface for the ops whose kernel depends on the rank's
// slice. Shapes are local: a value's layout gives this rank's extent.
//
//===----------------------------------------------------------------------===//
#include "galaxy/GalaxyDialect.h"

using namespace mlir;
using namespace galaxy;

std::vector<int64_t> galaxy::localShape(Value v, int rank) {
  auto t = cast<RankedTensorType>(v.getType());
  return layoutOf(v).localShape(t.getShape(), rank);
}

std::vector<int64_t> galaxy::localOffset(Value v, int rank) {
  auto t = cast<RankedTensorType>(v.getType());
  return layoutOf(v).localOffset(t.getShape(), rank);
}

int64_t galaxy::localNumel(Value v, int rank) {
  int64_t n = 1;
  for (int64_t d : localShape(v, rank))
    n *= d;
  return n;
}

int64_t galaxy::localBytes(Operation *op, int rank) {
  int64_t bytes = 0; // f32 and i32 alike
  for (Value v : op->getOperands())
    if (isa<RankedTensorType>(v.getType()))
      bytes += 4 * localNumel(v, rank);
  for (Value v : op->getResults())
    if (isa<RankedTensorType>(v.getType()))
      bytes += 4 * localNumel(v, rank);
  return bytes;
}

//===----------------------------------------------------------------------===//
// Costs
//===----------------------------------------------------------------------===//

namespace {
// GEMM-like: every output element is a dot product over the contracted
// extent this rank holds; FLOPs = 2 x MACs, bias adds not counted.
OpCost gemmCost(Operation *op, int rank, int64_t macs) {
  OpCost c;
  c.macs = macs;
  c.flops = 2 * macs;
  c.memBytes = localBytes(op, rank);
  return c;
}
constexpr const char *kGemmRule = "2 x MACs (bias adds not counted)";
} // namespace

OpCost LinearOp::cost(int rank) {
  return gemmCost(*this, rank,
                  localNumel(getResult(), rank) *
                      localShape(getInput(), rank).back());
}
std::string LinearOp::costRule() { return kGemmRule; }

OpCost MatmulOp::cost(int rank) {
  auto a = localShape(getLhs(), rank);
  int64_t k = getTransposeA() ? a[a.size() - 2] : a.back();
  return gemmCost(*this, rank, localNumel(getResult(), rank) * k);
}
std::string MatmulOp::costRule() { return kGemmRule; }

// dw[N, K] = dyᵀ·x summed over the rows.
OpCost LinearWeightGradOp::cost(int rank) {
  return gemmCost(*this, rank,
                  localNumel(getGrad(), rank) *
                      localShape(getInput(), rank).back());
}
std::string LinearWeightGradOp::costRule() { return kGemmRule; }

OpCost SgdUpdateOp::cost(int rank) {
  OpCost c;
  int64_t per = getWeightDecay().convertToDouble() != 0.0 ? 4 : 2;
  c.optFlops = per * localNumel(getParam(), rank);
  c.memBytes = localBytes(*this, rank);
  return c;
}
std::string SgdUpdateOp::costRule() {
  return "optimizer: 2 FLOPs per parameter element (4 with weight decay)";
}

OpCost AdamwUpdateOp::cost(int rank) {
  OpCost c;
  c.optFlops = 15 * localNumel(getParam(), rank);
  c.memBytes = localBytes(*this, rank);
  return c;
}
std::string AdamwUpdateOp::costRule() {
  return "optimizer: 15 FLOPs per parameter element";
}

namespace {
OpCost commCost(Operation *op, int rank, Value moved) {
  OpCost c;
  c.commBytes = 4 * localNumel(moved, rank); // f32 and i32 alike
  c.memBytes = localBytes(op, rank);
  return c;
}
} // namespace

OpCost AllReduceOp::cost(int rank) { return commCost(*this, rank, getInput()); }
std::string AllReduceOp::costRule() {
  return "communication: bytes of its local tensor";
}
OpCost AllGatherOp::cost(int rank) {
  return commCost(*this, rank, getResult());
}
std::string AllGatherOp::costRule() {
  return "communication: bytes of its (gathered) output";
}
OpCost ReduceScatterOp::cost(int rank) {
  return commCost(*this, rank, getInput());
}
std::string ReduceScatterOp::costRule() {
  return "communication: bytes of its (full) input";
}

//===----------------------------------------------------------------------===//
// Rank lowering
//===----------------------------------------------------------------------===//

namespace {
int64_t axisOf(Value v, StringRef name) {
  SmallVector<StringRef> names = dimNamesOf(v);
  auto *it = llvm::find(names, name);
  return it == names.end() ? -1 : it - names.begin();
}
} // namespace

// Addressed dropout (DESIGN.md idea 4): the mask is drawn by global element
// index, so the kernel needs the global shape and this rank's offset; a
// pipeline microbatch draws its rows of the global batch's mask.
static void lowerDropoutAddress(Value masked, int rank, RankLowering &k) {
  auto shape = cast<RankedTensorType>(masked.getType()).getShape();
  k.attrs["global_shape"] = std::vector<int64_t>(shape.begin(), shape.end());
  k.attrs["offset"] = localOffset(masked, rank);
  if (k.pipeline)
    if (int64_t b = axisOf(masked, "B"); b >= 0)
      k.attrs["batch_dim"] = b;
}

void DropoutOp::lowerForRank(int rank, RankLowering &k) {
  lowerDropoutAddress(getResult(), rank, k);
}

// The fused dropouts draw the mask of the dropout they replace: addressed
// like its result (galaxy-fuse gives the fused result that value's layout).
void DropoutAddOp::lowerForRank(int rank, RankLowering &k) {
  lowerDropoutAddress(getResult(), rank, k);
}

void DropoutBiasGradOp::lowerForRank(int rank, RankLowering &k) {
  lowerDropoutAddress(getResult(), rank, k);
}

// Positions count from the start of this rank's slice.
void IotaOp::lowerForRank(int rank, RankLowering &k) {
  k.attrs["offset"] =
      int64_t(getOffset() + localOffset(getResult(), rank)[getDim()]);
}

// A causal mask compares query and key positions: a rank holding a slice of
// the queries (sequence parallel) offsets its query positions.
void MaskedSoftmaxOp::lowerForRank(int rank, RankLowering &k) {
  if (!getCausal())
    return;
  k.attrs["q_offset"] = localOffset(getResult(), rank)[2];
}

// Rotary angles follow global positions: a rank holding a slice of the
// sequence (dim 2) starts at its slice's offset.
void RopeOp::lowerForRank(int rank, RankLowering &k) {
  k.attrs["offset"] = localOffset(getResult(), rank)[2];
}

// Global query head g reads KV head g / groups. When both sides are split at
// group boundaries (NK sharded like N) the local mapping is h / groups; a
// replicated input under head-sharded outputs (KV heads that do not split
// evenly over the ranks) needs the output slice's offset.
void RepeatKvOp::lowerForRank(int rank, RankLowering &k) {
  const int64_t groups = getGroups();
  k.attrs["head_offset"] = localOffset(getResult(), rank)[1] -
                           groups * localOffset(getInput(), rank)[1];
}

// The transpose of repeat_kv's mapping; a replicated (here: partial) result
// gets this rank's query heads' sums and zeros elsewhere.
void RepeatKvGradOp::lowerForRank(int rank, RankLowering &k) {
  const int64_t groups = getGroups();
  k.attrs["head_offset"] = localOffset(getGrad(), rank)[1] -
                           groups * localOffset(getResult(), rank)[1];
}

// A partial result gets its bias once, on rank 0.
void LinearOp::lowerForRank(int rank, RankLowering &k) {
  if (getBias() && layoutOf(getResult()).kind == Layout::P && rank != 0)
    k.keepOperand[2] = false;
}

// R -> P: rank 0 keeps the value, the others zero it (scale by 0); S -> P:
// each rank zero-pads its shard to the full shape.
void ToPartialOp::lowerForRank(int rank, RankLowering &k) {
  Layout from = layoutOf(getInput());
  if (from.kind == Layout::S) {
    k.kernel = "pad";
    k.attrs["dim"] = from.dim;
    k.attrs["sizes"] = from.sizes;
  } else {
    k.kernel = "scale";
    k.attrs["alpha"] = rank == 0 ? 1.0 : 0.0;
  }
}

// The accumulator lives in the runtime (the lowering binds it); zeroing it is
// the fill kernel (GalaxyOps.td) with value 0.
void ZeroGradOp::lowerForRank(int, RankLowering &k) { k.attrs["value"] = 0.0; }
