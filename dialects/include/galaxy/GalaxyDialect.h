//===- GalaxyDialect.h - the galaxy dialect and its ops ---------*- C++ -*-===//
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "galaxy/GalaxyDialect.h.inc"
#include "galaxy/GalaxyInterfaces.h.inc"

#define GET_OP_CLASSES
#include "galaxy/GalaxyOps.h.inc"

namespace galaxy {
// Discardable attributes stamped on ops by the annotate pass.
inline constexpr llvm::StringLiteral kBlockAttr = "galaxy.block";
inline constexpr llvm::StringLiteral kLayerAttr = "galaxy.layer";
inline constexpr llvm::StringLiteral kMethodAttr = "galaxy.method";
inline constexpr llvm::StringLiteral kBackwardAttr = "galaxy.backward";
// Function argument attribute naming a runtime input ("input_ids", ...).
inline constexpr llvm::StringLiteral kInputAttr = "galaxy.input";

// The block kinds a galaxy.block may carry.
bool isValidBlockKind(llvm::StringRef kind);
} // namespace galaxy
