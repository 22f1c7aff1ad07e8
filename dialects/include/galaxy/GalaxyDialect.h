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
// The types the interfaces speak in, before the interfaces themselves.
#include "galaxy/OpRules.h"
// clang-format off
#include "galaxy/GalaxyInterfaces.h.inc"
// clang-format on

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
// A block's partition region (att, con, mlp; other when absent and the kind
// is none of those), declared by the model on a galaxy.block and stamped on
// its ops by annotate. A block kind itself is the model's business.
inline constexpr llvm::StringLiteral kRegionAttr = "galaxy.region";

// Module attributes a model builder stamps (models/build.cpp) so that passes
// need not know the model: the PEFT-targetable linears (dictionary: config
// name -> Hugging Face module suffix after "<layer prefix><N>."), the layer
// module prefixes, the targets an adapter follows, the parameter-name
// prefixes every PEFT method trains, and the length of the layer sequence
// that pipeline stages cut.
inline constexpr llvm::StringLiteral kPeftTargetsAttr = "galaxy.peft_targets";
inline constexpr llvm::StringLiteral kLayerPrefixesAttr =
    "galaxy.layer_prefixes";
inline constexpr llvm::StringLiteral kAdapterAfterAttr = "galaxy.adapter_after";
inline constexpr llvm::StringLiteral kAlwaysTrainableAttr =
    "galaxy.always_trainable";
inline constexpr llvm::StringLiteral kNumLayersAttr = "galaxy.num_layers";
// Module attribute galaxy-pipeline stamps on a stage that holds a parameter
// other stages hold too (a tied embedding and LM head): dictionary, parameter
// name -> the stages holding a copy (i64 array, ascending). Their gradients
// are summed across the copies before each update.
inline constexpr llvm::StringLiteral kPipelineTiedAttr = "galaxy.pipeline_tied";

// The axis names of `v` joined by ',' ("B,S,H"; "" when unknown), from its
// defining op or function argument.
llvm::StringRef dimsOf(mlir::Value v);
// The same names one per axis ({"B", "S", "H"}; empty when unknown).
llvm::SmallVector<llvm::StringRef> dimNamesOf(mlir::Value v);
// Copies where `from` sits in the model (its galaxy.block, galaxy.layer and
// galaxy.region) onto `to`, for ops a pass creates on `from`'s behalf.
void copyPlacement(mlir::Operation *from, mlir::Operation *to);
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
} // namespace galaxy
