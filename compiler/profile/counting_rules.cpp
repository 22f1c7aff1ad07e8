#include "compiler/profile/counting_rules.h"

#include <map>

#include "galaxy/GalaxyDialect.h"
#include "mlir/IR/MLIRContext.h"

namespace galaxy::profile {

OpCost costOf(mlir::Operation *op, int rank) {
  if (auto iface = llvm::dyn_cast<CostOpInterface>(op))
    return iface.cost(rank);
  OpCost c;
  c.known = false;
  return c;
}

const std::vector<std::string> &countingRules() {
  static const std::vector<std::string> rules = [] {
    mlir::MLIRContext ctx;
    ctx.getOrLoadDialect<GalaxyDialect>();
    // Rule text -> the ops that follow it, in registration (name) order.
    std::map<std::string, std::string> byRule;
    for (mlir::RegisteredOperationName name : ctx.getRegisteredOperations()) {
      auto *cost = name.getInterface<CostOpInterface>();
      if (!cost)
        continue;
      std::string &ops = byRule[cost->costRule()];
      ops += (ops.empty() ? "" : ", ") +
             name.getStringRef().drop_front(strlen("galaxy.")).str();
    }
    std::vector<std::string> out;
    for (const auto &[rule, ops] : byRule)
      out.push_back(rule + ": " + ops);
    out.push_back("FLOPs per element count the elements of the op's first "
                  "operand; shapes are each rank's local shapes; backward = "
                  "ops autodiff derived");
    return out;
  }();
  return rules;
}

} // namespace galaxy::profile
