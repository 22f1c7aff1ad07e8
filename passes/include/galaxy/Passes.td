//===- Passes.td - galaxy pass declarations ---------------------*- tablegen -*-===//
#ifndef GALAXY_PASSES_TD
#define GALAXY_PASSES_TD

include "mlir/Pass/PassBase.td"

def Annotate : Pass<"galaxy-annotate", "mlir::ModuleOp"> {
  let summary = "Flatten galaxy.block regions into per-op block/layer attributes";
  let description = [{
    Moves every op out of its `galaxy.block` and stamps it with
    `galaxy.block` (kind) and `galaxy.layer` attributes, so later passes see
    one straight-line function in which each op still knows its region.
  }];
  let dependentDialects = ["::galaxy::GalaxyDialect"];
}

def Autodiff : Pass<"galaxy-autodiff", "mlir::ModuleOp"> {
  let summary = "Derive @train_step: forward, backward and optimizer updates";
  let description = [{
    Clones `@forward` into `@train_step`, differentiates its loss (result 0)
    with each op's GradientOpInterface rule, accumulates gradients of values
    used more than once, and updates every trainable parameter right after its
    gradient is complete. Values that do not depend on a trainable parameter
    get no gradient work. Backward ops inherit their forward op's block and
    layer and are marked `galaxy.backward`.
  }];
  let options = [
    Option<"optimizer", "optimizer", "std::string", "\"sgd\"", "sgd or adamw">,
    Option<"lr", "lr", "double", "5e-5", "learning rate">,
    Option<"weightDecay", "weight-decay", "double", "0.0", "weight decay">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", "0.999", "AdamW beta2">,
    Option<"epsilon", "epsilon", "double", "1e-8", "AdamW epsilon">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

#endif // GALAXY_PASSES_TD
