// One screen about a compiled module or plan, for people rather than tools.
#pragma once

#include <string>

#include "mlir/IR/BuiltinOps.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy {
// Blocks per kind, ops per kind, parameters (total / trainable) of each
// function.
std::string summarizeModule(mlir::ModuleOp module);
// Programs, instruction counts, buffers and the arena report of one plan.
std::string summarizePlan(const plan::Plan &p);
} // namespace galaxy
