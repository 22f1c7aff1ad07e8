// LLaMA (Hugging Face's LlamaForCausalLM / LlamaForSequenceClassification)
// as galaxy IR.
#pragma once

#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace galaxy {

// Builds `func.func @forward(<the inputs llamaSpec() declares>) -> (loss,
// logits)` with Hugging Face's parameter names, grouped into galaxy.block
// regions: embedding; per layer con (input RMSNorm), att, con (residual +
// post-attention RMSNorm), mlp, con (residual); then the final norm and the
// task head. `stepRows`: the rows of the step's whole batch (c.batch_size
// is the rows of this @forward: fewer for a pipeline microbatch).
mlir::OwningOpRef<mlir::ModuleOp> buildLlamaModel(mlir::MLIRContext &ctx,
                                                  const config::GalaxyConfig &c,
                                                  int64_t stepRows);

} // namespace galaxy
