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

def Peft : Pass<"galaxy-peft", "mlir::ModuleOp"> {
  let summary = "Parameter-efficient fine-tuning as a rewrite of @forward: LoRA, adapters, freezing";
  let description = [{
    Runs after galaxy-annotate, before autodiff. What it may target comes from
    the model, through module attributes its builder stamps:
    `galaxy.peft_targets` (config name -> Hugging Face module suffix),
    `galaxy.layer_prefixes`, `galaxy.adapter_after` and
    `galaxy.always_trainable` (the task head). `lora` adds
    y += (dropout(x)·Aᵀ·Bᵀ)·(alpha/r) to each target linear (names P.lora_A.weight
    [r, in], P.lora_B.weight [out, r]); `adapter` adds the Houlsby adapter
    h + up(act(down(h))) after each galaxy.adapter_after target (BERT: the
    attention output dense and the MLP output dense; it runs in the con region
    that follows). Every method then freezes all parameters but its own and
    the task head: `lora` keeps *.lora_*,
    `adapter` keeps *.adapter.*, `side` keeps side.*; `full` freezes nothing.
    New ops inherit the block of the linear they extend and model dimension
    names (R for the LoRA rank, Ad for the adapter width), so every parallel
    mode partitions them like the rest of the graph. A causal LM's generation
    functions @prefill and @decode, where present, get the same rewrite
    (without LoRA dropout), so a PEFT plan generates with its branches.
  }];
  let options = [
    Option<"method", "method", "std::string", "\"full\"", "full|lora|adapter|side">,
    Option<"loraDim", "lora-dim", "int64_t", "8", "LoRA rank r">,
    Option<"loraAlpha", "lora-alpha", "double", "32", "LoRA alpha (scale alpha/r)">,
    Option<"loraDropout", "lora-dropout", "double", "0.0", "dropout on the LoRA input">,
    ListOption<"loraTargets", "lora-targets", "std::string",
               "names of the model's PEFT targets (module attribute galaxy.peft_targets)">,
    Option<"fanInFanOut", "fan-in-fan-out", "bool", "false",
           "LoRA target weights are stored [in, out]">,
    Option<"adapterDim", "adapter-dim", "int64_t", "16", "adapter reduction k (width H/k)">,
    Option<"adapterAct", "adapter-act", "std::string", "\"gelu_new\"",
           "gelu_new (tanh GELU), gelu (erf), relu or swish">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

def MergeLora : Pass<"galaxy-merge-lora", "mlir::ModuleOp"> {
  let summary = "merge_weights: fold each LoRA pair into its base weight in @forward";
  let description = [{
    Runs after galaxy-autodiff (so @train_step keeps the separate factors) and
    rewrites @forward only, which lowers to the eval_step program: each LoRA
    branch y + scale(linear(linear(dropout(x), A), B)) becomes one linear with
    W_eff = W + (alpha/r)·(B·A) (for a [in, out] base weight: Aᵀ·Bᵀ through the
    matmul's transpose flags). Eval dropout is the identity, so the result is
    the same function. New values carry W's galaxy.dims and the linear's block,
    so every parallel mode partitions them like W.
  }];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

def PipelineSplit : Pass<"galaxy-pipeline", "mlir::ModuleOp"> {
  let summary = "Cut @forward down to one pipeline stage";
  let description = [{
    Runs after galaxy-peft, before autodiff. The model's layer sequence (ops
    carry their position in it as `galaxy.layer`; BART: encoder layers then
    decoder layers) is split into stages by `stage-layers` (layers per stage,
    summing to the module's `galaxy.num_layers` when the builder stamped it).
    Ops outside a layer run as early as their operands allow, those computed
    from inputs and parameters alone (embeddings) on the stage of their first
    reader (BART's decoder embedding: the first decoder stage), and parameters
    outside a layer where they are read;
    the pooler, head and loss thus land on the last stage. @forward keeps only stage `stage`'s ops. Values an earlier stage
    computes from parameters and a later stage reads cross every boundary in
    between: they become arguments "pp.in.K" and results "pp.out.K" (K numbers
    the values crossing one boundary, in program order). Values computed from
    the inputs alone (no parameter) are recomputed where they are read. The
    last stage keeps @forward's results (loss, logits). Arguments carry
    `galaxy.input`, results `galaxy.output` names, and the module
    `galaxy.pipeline = [stage, stages]`.
  }];
  let options = [
    Option<"stage", "stage", "int", "0", "the stage to keep">,
    ListOption<"stageLayers", "stage-layers", "int64_t",
               "layers of the model's layer sequence per stage">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

def Autodiff : Pass<"galaxy-autodiff", "mlir::ModuleOp"> {
  let summary = "Derive @train_step: forward, backward and optimizer updates";
  let description = [{
    Clones `@forward` into `@train_step`, differentiates its loss (result 0)
    with each op's GradientOpInterface rule (a pipeline stage: each
    "pp.out.K" result is seeded by a new argument "pp.grad.K", and the
    gradient of each "pp.in.K" argument is returned as "pp.dgrad.K"), accumulates gradients of values
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
    Option<"epsilon", "epsilon", "double", "1e-8", "AdamW epsilon">,
    Option<"accumulate", "accumulate", "bool", "false",
           "pipeline: add gradients into accumulators (galaxy.grad_accumulate) and "
           "put the optimizer updates into a separate @update">,
    Option<"lossScale", "loss-scale", "double", "1.0",
           "the loss gradient's seed (a microbatch's share of the global batch)">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

def Partition : Pass<"galaxy-partition", "mlir::ModuleOp"> {
  let summary = "Give every value a layout (R, S, P) and insert the collectives between them";
  let description = [{
    Each region (the galaxy.block attribute: att, con, mlp; everything else is
    "other") runs under a method that shards model dimensions: dp shards B
    (batch), sp shards S (query positions), tp shards A/N (attention heads)
    and NK/AK (grouped-query attention's KV heads, by the same weights) in
    att and I (intermediate) in mlp, none shards nothing. Rank r holds
    w_r*extent/sum(w) of an axis; an axis where that is not whole for every
    rank stays unsharded (KV heads split unlike the query heads), except N
    and I, where it is an error (an encoder-decoder's decoder heads and
    columns follow the weights too). A value's preferred layout follows from its
    galaxy.dims names; contractions over a sharded dimension yield partial
    sums (P). Where a producer's layout differs from
    what a consumer needs, one redistribution is inserted (P->R all_reduce,
    P->S reduce_scatter, S->R all_gather, R->S slice, R->P to_partial), and
    reused by later consumers. Forward and backward are treated alike, so the
    backward collectives are derived, not written. Function results end R.
  }];
  let options = [
    Option<"world", "world", "int", "1", "number of ranks">,
    Option<"att", "att", "std::string", "\"none\"", "method of att regions: none|dp|tp|sp">,
    Option<"con", "con", "std::string", "\"none\"", "method of con regions: none|dp|sp">,
    Option<"mlp", "mlp", "std::string", "\"none\"", "method of mlp regions: none|dp|tp|sp">,
    Option<"other", "other", "std::string", "\"none\"", "method of the other regions: none|dp">,
    ListOption<"batchSizes", "batch-sizes", "int64_t", "batch rows per rank (dp)">,
    ListOption<"seqSizes", "seq-sizes", "int64_t", "sequence positions per rank (sp)">,
    ListOption<"headSizes", "head-sizes", "int64_t", "attention heads per rank (tp)">,
    ListOption<"interSizes", "inter-sizes", "int64_t", "intermediate columns per rank (tp)">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

def Fuse : Pass<"galaxy-fuse", "mlir::ModuleOp"> {
  let summary = "Fuse elementwise epilogues into one kernel (after partitioning)";
  let description = [{
    Rewrites pairs of ops that each pass over the same tensor into one fused
    op the kernel schema knows, so the plan says what is fused:
    `add(dropout(x), r)` (the dropout read by the add alone) becomes
    `dropout_add(x, r)`; a `bias_grad` of a backward dropout, merge_heads
    or gelu_grad becomes `dropout_bias_grad(dy)`, `merge_heads_bias_grad(dh)`
    or `gelu_grad_bias_grad(x, dy)` (the fused op's first result replaces
    the producer's for every other reader). Both compute exactly what the pair computed. A pair fuses
    only where its values have one galaxy.layout and one galaxy.dims and both
    ops are forward or both backward, so every mode's plans fuse alike and
    the fused op's rank lowering (the dropout's mask address) is the pair's.
  }];
  let options = [
    Option<"dropoutAdd", "dropout-add", "bool", "true", "fuse add(dropout(x), r)">,
    Option<"dropoutBiasGrad", "dropout-bias-grad", "bool", "true",
           "fuse bias_grad(dropout(dy))">,
    Option<"mergeHeadsBiasGrad", "merge-heads-bias-grad", "bool", "true",
           "fuse bias_grad(merge_heads(dh))">,
    Option<"geluGradBiasGrad", "gelu-grad-bias-grad", "bool", "true",
           "fuse bias_grad(gelu_grad(x, dy))">
  ];
  let dependentDialects = ["::galaxy::GalaxyDialect", "::mlir::func::FuncDialect"];
}

#endif // GALAXY_PASSES_TD
