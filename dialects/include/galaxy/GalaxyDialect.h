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
#include "galaxy/Layout.h"
#define GET_ATTRDEF_CLASSES
#include "galaxy/GalaxyAttrs.h.inc"
#include "galaxy/OpRules.h"
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
// Function result attribute naming a program output ("loss", "pp.out.0").
inline constexpr llvm::StringLiteral kOutputAttr = "galaxy.output";
// Model-dimension names of each result's axes: an array of #galaxy.dims, one
// per result (one for a function argument).
inline constexpr llvm::StringLiteral kDimsAttr = "galaxy.dims";
// Layout of each result after partitioning: an array of #galaxy.layout, one
// per result (one for a function argument).
inline constexpr llvm::StringLiteral kLayoutAttr = "galaxy.layout";
// Module attribute: the number of ranks partitioning laid values out over.
inline constexpr llvm::StringLiteral kWorldAttr = "galaxy.world";

// The axis names of `v` joined by ',' ("B,S,H"; "" when unknown), from its
// defining op or function argument.
llvm::StringRef dimsOf(mlir::Value v);
// The galaxy.dims value of a function argument named `names` ("B,S,H"), for
// building argument attribute dictionaries.
mlir::ArrayAttr argDimsAttr(mlir::MLIRContext *ctx, llvm::StringRef names);

// The lowering fuses an SGD step (sgd_update) or a gradient accumulation
// (grad_accumulate) into the kernel that computes its gradient when that
// gradient is a weight gradient (linear_weight_grad or embedding_grad) used by
// nothing else: the op it fuses into, else null. The profiler asks the same
// question to map ops to plan instructions.
mlir::Operation *sgdFusedInto(mlir::Operation *update);
// Sets the axis names of `v` (an op result or a function argument).
void setDims(mlir::Value v, llvm::StringRef names);

// The block kinds a galaxy.block may carry.
bool isValidBlockKind(llvm::StringRef kind);
} // namespace galaxy
