//===- Passes.h - galaxy passes ----------------------------------*- C++
//-*-===//
#pragma once

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace galaxy {
#define GEN_PASS_DECL
#include "galaxy/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "galaxy/Passes.h.inc"
} // namespace galaxy
