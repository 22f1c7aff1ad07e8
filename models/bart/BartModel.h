// BART (Hugging Face's BartForConditionalGeneration /
// BartForSequenceClassification) as galaxy IR.
#pragma once

#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace galaxy {

// Builds `func.func @forward(<the inputs bartSpec() declares>) -> (loss,
// logits)` with Hugging Face's parameter names: the shared embedding
// (model.shared.weight, read by the encoder, the decoder and the LM head),
// learned positions at offset 2, post-LN encoder layers (att, con, mlp, con)
// at layers 0..E-1 and decoder layers (att, con, cross-attention att, con,
// mlp, con) at E..E+D-1, then the task head. `stepRows`: the rows of the
// step's whole batch.
mlir::OwningOpRef<mlir::ModuleOp> buildBartModel(mlir::MLIRContext &ctx,
                                                 const config::GalaxyConfig &c,
                                                 int64_t stepRows);

} // namespace galaxy
