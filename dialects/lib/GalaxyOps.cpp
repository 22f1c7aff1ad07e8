//===- GalaxyOps.cpp - galaxy dialect, op verifiers
//-------------------------===//
#include "galaxy/GalaxyDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using namespace galaxy;

#include "galaxy/GalaxyDialect.cpp.inc"
#include "galaxy/GalaxyInterfaces.cpp.inc"

void GalaxyDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "galaxy/GalaxyOps.cpp.inc"
      >();
  registerAttributes();
}

void galaxy::copyPlacement(Operation *from, Operation *to) {
  for (StringRef name : {kBlockAttr, kLayerAttr, kRegionAttr})
    if (Attribute a = from->getAttr(name))
      to->setAttr(name, a);
}

Operation *galaxy::sgdFusedInto(Operation *op) {
  if (!isa<SgdUpdateOp, GradAccumulateOp>(op))
    return nullptr;
  Value grad = op->getOperand(1);
  if (!grad.hasOneUse())
    return nullptr;
  Operation *d = grad.getDefiningOp();
  return d && isa<LinearWeightGradOp, EmbeddingGradOp>(d) ? d : nullptr;
}

namespace {
ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

std::string str(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Checks `shape` equals `expected`, naming what it is on failure.
LogicalResult expectShape(Operation *op, StringRef what,
                          ArrayRef<int64_t> shape, ArrayRef<int64_t> expected) {
  if (shape == expected)
    return success();
  return op->emitOpError() << what << " has shape " << str(shape) << " but "
                           << str(expected) << " was expected";
}
} // namespace

LogicalResult BlockOp::verify() {
  // The kind names the model's region (embedding, att, ...); which kinds
  // exist is the model's business.
  if (getKind().empty())
    return emitOpError() << "needs a non-empty block kind";
  auto yield = cast<YieldOp>(getBody().front().getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError()
           << "yields " << yield.getValues().size()
           << " values whose types differ from the block's results";
  return success();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty parameter name");
  StringRef init = getInit();
  if (init != "normal" && init != "zeros" && init != "ones" &&
      init != "kaiming_uniform")
    return emitOpError()
           << "unknown initializer '" << init
           << "'; expected normal, zeros, ones or kaiming_uniform";
  return success();
}

LogicalResult IotaOp::verify() {
  int64_t rank = getType().getRank();
  if (getDim() < 0 || getDim() >= rank)
    return emitOpError() << "dim " << getDim() << " is out of range for rank "
                         << rank;
  return success();
}

LogicalResult EmbeddingOp::verify() {
  auto table = shapeOf(getTable());
  if (table.size() != 2)
    return emitOpError() << "table must be [vocab, hidden], got " << str(table);
  SmallVector<int64_t> expected(shapeOf(getIds()));
  expected.push_back(table[1]);
  return expectShape(*this, "result", shapeOf(getResult()), expected);
}

LogicalResult LinearOp::verify() {
  auto x = shapeOf(getInput()), w = shapeOf(getWeight());
  if (x.empty() || w.size() != 2)
    return emitOpError() << "expects input [..., K] and a 2-D weight, got "
                         << str(x) << " and " << str(w);
  int64_t k = getTransposeW() ? w[1] : w[0], n = getTransposeW() ? w[0] : w[1];
  if (k != x.back())
    return emitOpError() << "input has " << x.back() << " features but weight "
                         << str(w)
                         << (getTransposeW() ? " (out, in)" : " (in, out)")
                         << " expects " << k;
  // The bias is [out], or [1, out]: a buffer Hugging Face keeps with a unit
  // dimension (BART's final_logits_bias), the same elements in the same order.
  if (getBias()) {
    auto bias = shapeOf(getBias());
    if (!(bias.size() == 2 && bias[0] == 1 && bias[1] == n) &&
        failed(expectShape(*this, "bias", bias, {n})))
      return failure();
  }
  SmallVector<int64_t> expected(x.drop_back());
  expected.push_back(n);
  return expectShape(*this, "result", shapeOf(getResult()), expected);
}

LogicalResult MatmulOp::verify() {
  auto a = shapeOf(getLhs()), b = shapeOf(getRhs());
  if (a.size() < 2 || a.size() != b.size())
    return emitOpError() << "operands must have the same rank >= 2, got "
                         << str(a) << " and " << str(b);
  if (a.drop_back(2) != b.drop_back(2))
    return emitOpError() << "batch dims differ: " << str(a) << " vs " << str(b);
  size_t r = a.size();
  int64_t m = getTransposeA() ? a[r - 1] : a[r - 2];
  int64_t ka = getTransposeA() ? a[r - 2] : a[r - 1];
  int64_t kb = getTransposeB() ? b[r - 1] : b[r - 2];
  int64_t n = getTransposeB() ? b[r - 2] : b[r - 1];
  if (ka != kb)
    return emitOpError() << "contracting dims differ: " << ka << " vs " << kb;
  SmallVector<int64_t> expected(a.drop_back(2));
  expected.append({m, n});
  return expectShape(*this, "result", shapeOf(getResult()), expected);
}

LogicalResult SplitHeadsOp::verify() {
  auto x = shapeOf(getInput()), y = shapeOf(getResult());
  if (x.size() != 3 || y.size() != 4)
    return emitOpError() << "maps [B, S, H] to [B, n, S, d], got " << str(x)
                         << " -> " << str(y);
  if (y[1] <= 0 || x[2] % y[1] != 0)
    return emitOpError() << "hidden size " << x[2] << " is not divisible into "
                         << y[1] << " heads";
  return expectShape(*this, "result", y, {x[0], y[1], x[1], x[2] / y[1]});
}

LogicalResult MergeHeadsOp::verify() {
  auto x = shapeOf(getInput());
  if (x.size() != 4)
    return emitOpError() << "expects [B, n, S, d], got " << str(x);
  return expectShape(*this, "result", shapeOf(getResult()),
                     {x[0], x[2], x[1] * x[3]});
}

LogicalResult GeluGradBiasGradOp::verify() {
  auto dy = getGrad().getType().getShape();
  if (dy.empty())
    return emitOpError() << "expects grad [..., N], got a scalar";
  if (failed(
          expectShape(*this, "bias_grad", shapeOf(getBiasGrad()), {dy.back()})))
    return failure();
  StringRef a = getApproximate();
  if (a != "none" && a != "tanh")
    return emitOpError() << "approximate must be none or tanh, got " << a;
  return success();
}

LogicalResult MergeHeadsBiasGradOp::verify() {
  auto x = shapeOf(getInput());
  if (x.size() != 4)
    return emitOpError() << "expects [B, n, S, d], got " << str(x);
  if (failed(expectShape(*this, "result", shapeOf(getResult()),
                         {x[0], x[2], x[1] * x[3]})))
    return failure();
  return expectShape(*this, "bias_grad", shapeOf(getBiasGrad()), {x[1] * x[3]});
}

namespace {
// repeat_kv maps [B, nkv, S, d] (`few`) to [B, nkv·groups, S, d] (`many`);
// its gradient maps them back.
LogicalResult verifyRepeatKv(Operation *op, ArrayRef<int64_t> few,
                             ArrayRef<int64_t> many, int64_t groups,
                             bool grad) {
  if (groups < 1)
    return op->emitOpError() << "groups must be at least 1, got " << groups;
  ArrayRef<int64_t> in = grad ? many : few;
  if (in.size() != 4)
    return op->emitOpError() << "expects [B, n, S, d], got " << str(in);
  if (grad && in[1] % groups != 0)
    return op->emitOpError()
           << in[1] << " heads do not split into groups of " << groups;
  SmallVector<int64_t> expected(in);
  expected[1] = grad ? in[1] / groups : in[1] * groups;
  return expectShape(op, "result", grad ? few : many, expected);
}
} // namespace

LogicalResult RepeatKvOp::verify() {
  return verifyRepeatKv(*this, shapeOf(getInput()), shapeOf(getResult()),
                        getGroups(), false);
}

LogicalResult RepeatKvGradOp::verify() {
  return verifyRepeatKv(*this, shapeOf(getResult()), shapeOf(getGrad()),
                        getGroups(), true);
}

LogicalResult RopeOp::verify() {
  auto x = shapeOf(getInput());
  if (x.size() != 4)
    return emitOpError() << "expects [B, n, S, d], got " << str(x);
  if (x[3] <= 0 || x[3] % 2 != 0)
    return emitOpError() << "head size " << x[3]
                         << " must be even (two halves rotate together)";
  if (!(getTheta().convertToDouble() > 0))
    return emitOpError("theta must be positive");
  return success();
}

LogicalResult MaskedSoftmaxOp::verify() {
  auto x = shapeOf(getInput());
  if (x.size() != 4)
    return emitOpError() << "expects scores [B, n, Sq, Sk], got " << str(x);
  if (getMask() &&
      failed(expectShape(*this, "mask", shapeOf(getMask()), {x[0], x[3]})))
    return failure();
  return expectShape(*this, "result", shapeOf(getResult()), x);
}

LogicalResult LayerNormOp::verify() {
  auto x = shapeOf(getInput());
  if (x.empty())
    return emitOpError("expects a ranked input of rank >= 1");
  if (failed(expectShape(*this, "gamma", shapeOf(getGamma()), {x.back()})) ||
      failed(expectShape(*this, "beta", shapeOf(getBeta()), {x.back()})))
    return failure();
  if (getEps().convertToDouble() <= 0)
    return emitOpError("eps must be positive");
  return expectShape(*this, "result", shapeOf(getResult()), x);
}

LogicalResult RmsNormOp::verify() {
  auto x = shapeOf(getInput());
  if (x.empty())
    return emitOpError("expects a ranked input of rank >= 1");
  if (failed(expectShape(*this, "weight", shapeOf(getWeight()), {x.back()})))
    return failure();
  if (getEps().convertToDouble() <= 0)
    return emitOpError("eps must be positive");
  return expectShape(*this, "result", shapeOf(getResult()), x);
}

LogicalResult GeluOp::verify() {
  if (getApproximate() != "none" && getApproximate() != "tanh")
    return emitOpError() << "approximate must be \"none\" or \"tanh\", got \""
                         << getApproximate() << "\"";
  return success();
}

static LogicalResult verifyDropoutP(Operation *op, double p) {
  if (p < 0 || p >= 1)
    return op->emitOpError() << "p = " << p << " must be in [0, 1)";
  return success();
}

LogicalResult DropoutOp::verify() {
  return verifyDropoutP(*this, getP().convertToDouble());
}

LogicalResult DropoutAddOp::verify() {
  return verifyDropoutP(*this, getP().convertToDouble());
}

// bias_grad: [N] for dy [..., N].
LogicalResult DropoutBiasGradOp::verify() {
  auto dy = getGrad().getType().getShape();
  auto db = getBiasGrad().getType().getShape();
  if (dy.empty() || db.size() != 1 || db[0] != dy.back())
    return emitOpError() << "expects bias_grad [N] for grad [..., N], got "
                         << str(db) << " for " << str(dy);
  return verifyDropoutP(*this, getP().convertToDouble());
}

// take_token(_grad): x [B, S, H] and the token [B, H]; the position is
// `index`, or per row `indices` [B] with index 0.
static LogicalResult verifyTakeToken(Operation *op, ArrayRef<int64_t> x,
                                     StringRef xName, Value token,
                                     StringRef tokenName, Value indices,
                                     int64_t index) {
  if (x.size() != 3)
    return op->emitOpError()
           << "expects " << xName << " [B, S, H], got " << str(x);
  if (indices) {
    // Per-row positions are data: the kernel checks their range.
    if (index != 0)
      return op->emitOpError()
             << "takes per-row indices, so index must be 0, got " << index;
    if (failed(expectShape(op, "indices", shapeOf(indices), {x[0]})))
      return failure();
  } else if (index < 0 || index >= x[1]) {
    return op->emitOpError()
           << "index " << index << " is outside the sequence of " << x[1];
  }
  return expectShape(op, tokenName, shapeOf(token), {x[0], x[2]});
}

LogicalResult TakeTokenOp::verify() {
  return verifyTakeToken(*this, shapeOf(getInput()), "input", getResult(),
                         "result", getIndices(), getIndex());
}

LogicalResult TakeTokenGradOp::verify() {
  return verifyTakeToken(*this, shapeOf(getResult()), "result", getGrad(),
                         "grad", getIndices(), getIndex());
}

LogicalResult CrossEntropyOp::verify() {
  auto l = shapeOf(getLogits()), y = shapeOf(getLabels());
  // Labels index every leading position of the logits: [B, C] / [B],
  // [B, S, V] / [B, S].
  if (l.empty() || ArrayRef<int64_t>(l).drop_back() != ArrayRef<int64_t>(y))
    return emitOpError() << "expects logits [..., C] and labels [...] of the "
                            "logits' leading shape, got "
                         << str(l) << " and " << str(y);
  if (getDenominator().convertToDouble() <= 0)
    return emitOpError("denominator must be positive");
  return success();
}

static LogicalResult verifyUpdate(Operation *op, Value param, Value grad) {
  if (param.getType() != grad.getType())
    return op->emitOpError()
           << "gradient type " << grad.getType()
           << " differs from parameter type " << param.getType();
  if (!param.getDefiningOp<ParamOp>())
    return op->emitOpError("updates a value that is not a galaxy.param");
  return success();
}

LogicalResult SgdUpdateOp::verify() {
  return verifyUpdate(*this, getParam(), getGrad());
}
LogicalResult AdamwUpdateOp::verify() {
  return verifyUpdate(*this, getParam(), getGrad());
}
LogicalResult GradAccumulateOp::verify() {
  return verifyUpdate(*this, getParam(), getGrad());
}
LogicalResult GradOfOp::verify() {
  return verifyUpdate(*this, getParam(), getResult());
}
LogicalResult ZeroGradOp::verify() {
  return verifyUpdate(*this, getParam(), getParam());
}

// A sharded axis must exist and its per-rank sizes must add up to its length.
static LogicalResult verifyShards(Operation *op, Value v, int64_t dim,
                                  ArrayRef<int64_t> sizes) {
  auto shape = shapeOf(v);
  if (dim < 0 || dim >= int64_t(shape.size()))
    return op->emitOpError()
           << "dim " << dim << " is out of range for " << str(shape);
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      return op->emitOpError("shard sizes must be non-negative");
    sum += s;
  }
  if (sum != shape[dim])
    return op->emitOpError()
           << "shard sizes " << str(sizes) << " sum to " << sum << " but dim "
           << dim << " has " << shape[dim];
  return success();
}

LogicalResult AllGatherOp::verify() {
  return verifyShards(*this, getInput(), getDim(), getSizes());
}
LogicalResult ReduceScatterOp::verify() {
  return verifyShards(*this, getInput(), getDim(), getSizes());
}
LogicalResult SliceOp::verify() {
  return verifyShards(*this, getInput(), getDim(), getSizes());
}

#define GET_OP_CLASSES
#include "galaxy/GalaxyOps.cpp.inc"
