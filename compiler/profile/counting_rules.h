// What one op costs on one rank: each op's CostOpInterface (its cost trait or
// its own rule, beside its ODS definition) applied to its local shapes. This
// file only asks the ops and lists their rules for reports.
#pragma once

#include <string>
#include <vector>

#include "galaxy/OpRules.h"
#include "mlir/IR/Operation.h"

namespace galaxy::profile {

using galaxy::OpCost;

// The cost of `op` on `rank` (shapes from the galaxy.layout annotations);
// `known` is false for ops outside the galaxy dialect.
OpCost costOf(mlir::Operation *op, int rank);

// One line per rule ("2 x MACs ...: linear, matmul, linear_weight_grad"),
// gathered from the registered ops, for the report header and the JSON
// "conventions".
const std::vector<std::string> &countingRules();

} // namespace galaxy::profile
