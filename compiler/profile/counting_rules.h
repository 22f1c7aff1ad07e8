// What one op costs on one rank: DeepSpeed flops-profiler conventions applied to
// the op's local (per-rank) shapes.
//
//   linear, matmul, linear_weight_grad   FLOPs = 2 x MACs (bias adds not counted)
//   layer_norm                           5 FLOPs per input element
//   masked_softmax, gelu, tanh           1 FLOP per element (the mask add is inside)
//   softmax_grad, gelu_grad, tanh_grad   1 FLOP per element (a grad counts as its op)
//   layer_norm_grad                      5 FLOPs per input element (as layer_norm)
//   cross_entropy, cross_entropy_grad    1 FLOP per logit
//   add, mul, scale, bias_grad           1 FLOP per element (DeepSpeed: torch.add/mul)
//   embedding(_grad), dropout, data movement (split/merge heads, take_token,
//   slice, to_partial, fill, iota)       0
//   sgd_update                           2 per element (+2 with weight decay)
//   adamw_update                         15 per element (decay 1, m 3, v 4, step 7)
//   collectives                          0 FLOPs; bytes per profile.h's CommOp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlir/IR/Operation.h"

namespace galaxy::profile {

struct OpCost {
  int64_t macs = 0, flops = 0;
  int64_t optFlops = 0;  // optimizer updates only
  int64_t commBytes = 0; // collectives only
  bool known = true;     // false: the op kind has no rule (counted as 0)
};

// The cost of `op` on `rank` (shapes from the galaxy.layout annotations).
OpCost costOf(mlir::Operation *op, int rank);

// One line per rule, for the report header and the JSON "conventions".
const std::vector<std::string> &countingRules();

} // namespace galaxy::profile
