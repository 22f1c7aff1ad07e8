#include "compiler/profile/counting_rules.h"

#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringSwitch.h"

namespace galaxy::profile {
namespace {

std::vector<int64_t> localShape(mlir::Value v, int rank) {
  auto t = llvm::cast<mlir::RankedTensorType>(v.getType());
  return layoutOf(v).localShape(t.getShape(), rank);
}

int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t localNumel(mlir::Value v, int rank) {
  return numel(localShape(v, rank));
}

enum class Rule {
  kMatmulLike,
  kPerElement,
  kZero,
  kSgd,
  kAdamw,
  kComm,
  kUnknown
};

struct RuleOf {
  Rule rule;
  int64_t perElement = 0; // kPerElement
};

RuleOf ruleOf(llvm::StringRef name) {
  return llvm::StringSwitch<RuleOf>(name)
      .Cases("linear", "matmul", "linear_weight_grad", {Rule::kMatmulLike})
      .Cases("layer_norm", "layer_norm_grad", {Rule::kPerElement, 5})
      .Cases("masked_softmax", "softmax_grad", "gelu", "gelu_grad",
             {Rule::kPerElement, 1})
      .Cases("tanh", "tanh_grad", "cross_entropy", "cross_entropy_grad",
             {Rule::kPerElement, 1})
      .Cases("add", "mul", "scale", "bias_grad", {Rule::kPerElement, 1})
      .Cases("embedding", "embedding_grad", "dropout", "split_heads",
             "merge_heads", {Rule::kZero})
      .Cases("take_token", "take_token_grad", "slice", "to_partial", "fill",
             "iota", {Rule::kZero})
      .Cases("all_reduce", "all_gather", "reduce_scatter", {Rule::kComm})
      .Case("sgd_update", {Rule::kSgd})
      .Case("adamw_update", {Rule::kAdamw})
      .Default({Rule::kUnknown});
}

// MACs of the three GEMM-like ops from local shapes: every output element is a
// dot product over the contracted extent this rank holds.
int64_t macsOf(mlir::Operation *op, int rank) {
  if (auto mm = llvm::dyn_cast<MatmulOp>(op)) {
    auto a = localShape(mm.getLhs(), rank);
    int64_t k = mm.getTransposeA() ? a[a.size() - 2] : a.back();
    return localNumel(mm.getResult(), rank) * k;
  }
  if (auto wg =
          llvm::dyn_cast<LinearWeightGradOp>(op)) // dw[N,K] = dy^T x over rows
    return localNumel(wg.getGrad(), rank) *
           localShape(wg.getInput(), rank).back();
  auto lin = llvm::cast<LinearOp>(op);
  return localNumel(lin.getResult(), rank) *
         localShape(lin.getInput(), rank).back();
}

} // namespace

OpCost costOf(mlir::Operation *op, int rank) {
  OpCost c;
  llvm::StringRef name = op->getName().getStringRef();
  if (!name.consume_front("galaxy.")) {
    c.known = false;
    return c;
  }
  RuleOf r = ruleOf(name);
  switch (r.rule) {
  case Rule::kMatmulLike:
    c.macs = macsOf(op, rank);
    c.flops = 2 * c.macs;
    break;
  case Rule::kPerElement:
    // Operand 0 is the main input (x, dy, logits), shaped like the output but
    // for the reductions (bias_grad: dy, not db).
    c.flops = r.perElement * localNumel(op->getOperand(0), rank);
    break;
  case Rule::kSgd: {
    auto sgd = llvm::cast<SgdUpdateOp>(op);
    int64_t per = sgd.getWeightDecay().convertToDouble() != 0.0 ? 4 : 2;
    c.optFlops = per * localNumel(sgd.getParam(), rank);
    break;
  }
  case Rule::kAdamw:
    c.optFlops = 15 * localNumel(op->getOperand(0), rank);
    break;
  case Rule::kComm: {
    mlir::Value v = name == "all_gather" ? op->getResult(0) : op->getOperand(0);
    c.commBytes = 4 * localNumel(v, rank); // f32 and i32 alike
    break;
  }
  case Rule::kZero:
    break;
  case Rule::kUnknown:
    c.known = false;
    break;
  }
  return c;
}

const std::vector<std::string> &countingRules() {
  static const std::vector<std::string> rules = {
      "linear, matmul (attention scores and context included), "
      "linear_weight_grad: "
      "FLOPs = 2 x MACs; bias adds not counted",
      "layer_norm and layer_norm_grad: 5 FLOPs per element",
      "masked_softmax, gelu, tanh and their grads: 1 FLOP per element",
      "cross_entropy and its grad: 1 FLOP per logit",
      "add, mul, scale, bias_grad: 1 FLOP per element",
      "embedding, embedding_grad, dropout, data movement: 0",
      "sgd_update: 2 FLOPs per parameter element (4 with weight decay); "
      "adamw_update: 15",
      "comm bytes per rank: all_reduce = its local tensor, all_gather = its "
      "output, "
      "reduce_scatter = its input",
      "shapes are each rank's local shapes; backward = ops autodiff derived",
  };
  return rules;
}

} // namespace galaxy::profile
