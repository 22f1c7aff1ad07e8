#include "compiler/Pipeline.h"

#include "absl/strings/str_cat.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/parallel_modes.h"
#include "compiler/config/validate.h"
#include "galaxy/Passes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "models/bart/BartInference.h"
#include "models/build.h"
#include "models/llama/LlamaInference.h"
#include "llvm/Support/raw_ostream.h"

namespace galaxy {

const std::vector<std::string> &pipelineStages() {
  static const std::vector<std::string> stages = {
      "model", "annotate", "peft", "pipeline", "autodiff", "partition"};
  return stages;
}

void registerGalaxyDialects(mlir::MLIRContext &ctx) {
  ctx.getOrLoadDialect<GalaxyDialect>();
  ctx.getOrLoadDialect<mlir::func::FuncDialect>();
}

namespace {
absl::StatusOr<PeftOptions> peftOptions(const config::GalaxyConfig &c) {
  auto method = config::peftMethod(c);
  if (!method.ok())
    return method.status();
  PeftOptions o;
  switch (*method) {
  case config::PeftMethod::kFull:
    o.method = "full";
    break;
  case config::PeftMethod::kLora:
    o.method = "lora";
    break;
  case config::PeftMethod::kAdapter:
    o.method = "adapter";
    break;
  case config::PeftMethod::kSide:
    o.method = "side";
    break;
  case config::PeftMethod::kSideOnly: // the builder leaves the backbone out
    o.method = "side";
    break;
  }
  o.loraDim = c.lora_dim;
  o.loraAlpha = c.lora_alpha;
  o.loraDropout = c.lora_dropout;
  o.loraTargets = c.lora_target_modules;
  o.fanInFanOut = c.fan_in_fan_out;
  o.adapterDim = c.adapter_reduction_dim;
  switch (c.non_linearity) {
  case config::Activation::kGelu:
    o.adapterAct = "gelu";
    break;
  case config::Activation::kGeluNew:
    o.adapterAct = "gelu_new";
    break;
  case config::Activation::kRelu:
    o.adapterAct = "relu";
    break;
  case config::Activation::kSwish:
    o.adapterAct = "swish";
    break;
  }
  return o;
}

// The options point into `spec` (list options are views): keep it alive
// while the pass runs.
PartitionOptions partitionOptions(const config::PartitionSpec &spec) {
  PartitionOptions o;
  o.world = spec.world;
  o.att = spec.att;
  o.con = spec.con;
  o.mlp = spec.mlp;
  o.other = spec.other;
  o.batchSizes = spec.batchSizes;
  o.seqSizes = spec.seqSizes;
  o.headSizes = spec.headSizes;
  o.interSizes = spec.interSizes;
  return o;
}
} // namespace

std::vector<int64_t> microbatchSizes(const config::GalaxyConfig &cfg) {
  std::vector<int64_t> sizes;
  for (int64_t n : cfg.pp_microbatch_list)
    if (std::find(sizes.begin(), sizes.end(), n) == sizes.end())
      sizes.push_back(n);
  return sizes;
}

absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
compileToStage(mlir::MLIRContext &ctx, const config::GalaxyConfig &cfg,
               const std::string &stopAfter, StageChoice pipe) {
  const bool pp = cfg.parallel_mode == config::ParallelMode::kPP;
  if (pp && pipe.rows <= 0)
    pipe.rows = cfg.pp_microbatch_list.empty() ? cfg.batch_size
                                               : cfg.pp_microbatch_list[0];
  // What the partition pass is told (a pipeline stage: its group's view).
  const config::PartitionSpec partition = config::partitionSpec(cfg, pipe.rows);
  const auto &stages = pipelineStages();
  auto last = std::find(stages.begin(), stages.end(), stopAfter);
  if (last == stages.end())
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown stage '", stopAfter,
        "'; expected one of: model, annotate, peft, pipeline, autodiff, "
        "partition"));
  registerGalaxyDialects(ctx);

  // Collect diagnostics into the status message instead of stderr.
  std::string diags;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    llvm::raw_string_ostream os(diags);
    os << d.getLocation() << ": " << d << "\n";
    return mlir::success();
  });

  models::BuildOptions build;
  if (pp)
    build.batchRows = pipe.rows; // each stage program sees one microbatch
  auto built = models::buildModel(ctx, cfg, build);
  if (!built.ok())
    return absl::UnimplementedError(built.status().message());
  mlir::OwningOpRef<mlir::ModuleOp> module = std::move(*built);
  // A causal LM's KV-cache generation functions (@prefill, @decode): the
  // PEFT pass rewrites them like @forward, autodiff reads only @forward, and
  // the partitioner lays them out like it, in every SPMD mode. Not for
  // pipelines yet.
  if (!pp && llamaInferenceApplies(cfg))
    addLlamaInference(*module, cfg);
  // BART's (@encode, @decode): the same, for the seq2seq decoder.
  if (!pp && bartInferenceApplies(cfg))
    addBartInference(*module, cfg);
  if (failed(mlir::verify(*module)))
    return absl::InternalError(absl::StrCat(
        "the ", cfg.model_type, " builder produced invalid IR:\n", diags));

  for (auto it = stages.begin() + 1; it <= last; ++it) {
    mlir::PassManager pm(&ctx);
    if (*it == "annotate") {
      pm.addPass(createAnnotate());
    } else if (*it == "peft") {
      auto o = peftOptions(cfg);
      if (!o.ok())
        return o.status();
      pm.addPass(createPeft(*o));
    } else if (*it == "pipeline") {
      if (!pp)
        continue;
      PipelineSplitOptions o;
      o.stage = pipe.stage;
      o.stageLayers = cfg.stage_num_hidden_layers_list;
      pm.addPass(createPipelineSplit(o));
    } else if (*it == "autodiff") {
      // An inference plan is forward-only: no @train_step, no optimizer.
      if (cfg.inference)
        continue;
      AutodiffOptions o;
      if (pp) {
        // Gradients add up over the step's microbatches; the loss gradient
        // of a microbatch is its share of the global-batch mean.
        o.accumulate = true;
        o.lossScale = double(pipe.rows) / double(cfg.batch_size);
      }
      o.optimizer =
          cfg.optimizer == config::Optimizer::kAdamW ? "adamw" : "sgd";
      o.lr = cfg.learning_rate;
      o.weightDecay = cfg.weight_decay;
      o.beta1 = cfg.adam_beta1;
      o.beta2 = cfg.adam_beta2;
      o.epsilon = cfg.adam_epsilon;
      pm.addPass(createAutodiff(o));
      // After autodiff, so only @forward (eval_step) sees merged weights.
      if (cfg.merge_weights && cfg.use_lora)
        pm.addPass(createMergeLora());
    } else if (*it == "partition") {
      pm.addPass(createPartition(partitionOptions(partition)));
      // What is lowered is fused; galaxyc --no-fuse leaves the pairs apart
      // (an A/B switch for benchmarks: bench/bert_step.sh FUSE_AB=1).
      if (cfg.fuse)
        pm.addPass(createFuse());
    }
    if (failed(pm.run(*module)))
      return absl::InternalError(
          absl::StrCat("stage '", *it, "' failed:\n", diags));
  }
  return module;
}

} // namespace galaxy
