// What one op costs on one rank: DeepSpeed flops-profiler conventions applied
// to the op's local (per-rank) shapes. The table is in docs/profiler.md:
// GEMMs (linear, matmul, linear_weight_grad) 2 x MACs; layer_norm(_grad) 5 per
// element; softmax, gelu, tanh, their grads, cross_entropy(_grad), add, mul,
// scale and bias_grad 1 per element; embedding, dropout and data movement 0;
// sgd_update 2 per parameter element (4 with weight decay), adamw_update 15;
// collectives 0 FLOPs and bytes per profile.h's CommOp.
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
