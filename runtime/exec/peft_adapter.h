// Hugging Face PEFT adapter folders (adapter_config.json +
// adapter_model.safetensors): galaxy-run --save-adapter writes a LoRA plan's
// factors (and its trained task head) so PeftModel.from_pretrained opens
// them; --init-adapter reads such a folder back into a LoRA plan. Nothing
// here names a model: modules come from the plan's parameter names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

// PEFT's names of the files and of its tensors: "base_model.model." + the
// parameter's Hugging Face name (the adapter name "default" is dropped on
// save and put back on load by PEFT itself).
inline constexpr const char *kPeftPrefix = "base_model.model.";
inline constexpr const char *kAdapterConfigFile = "adapter_config.json";
inline constexpr const char *kAdapterWeightsFile = "adapter_model.safetensors";

// One parameter of the whole model (the union of every pipeline stage's
// plan), global shape.
struct ModelParam {
  std::string name;
  std::vector<int64_t> shape;
  bool trainable = false;
};

// What an adapter folder records about a LoRA plan (peftPlanInfo).
struct PeftPlanInfo {
  std::vector<ModelParam> params;
  int64_t r = 0;
  double alpha = 0, dropout = 0;
  bool fanInFanOut = false;
  std::string taskType;  // "SEQ_CLS", "CAUSAL_LM" or "" (not known)
  std::string baseModel; // base_model_name_or_path; "" when not known
  // Derived from the parameters: modules M with M.lora_A.weight and
  // M.lora_B.weight, and the modules of the trainable parameters that are
  // not LoRA factors (the task head: PEFT's modules_to_save). Sorted.
  std::vector<std::string> loraModules, modulesToSave;
};

// `configJson` is plan.config_json (use_lora, lora_dim, lora_alpha,
// lora_dropout, fan_in_fan_out, task, _name_or_path); `labelsRank` the rank
// of the plans' "labels" input (1: one label per row -> SEQ_CLS, 2: one per
// token; 0: none), used when the config names no task. FailedPrecondition
// for a plan without LoRA.
absl::StatusOr<PeftPlanInfo> peftPlanInfo(const std::string &configJson,
                                          std::vector<ModelParam> params,
                                          int labelsRank);

// PEFT's target_modules for the plan: per LoRA module the shortest dotted
// suffix that no other module of the model ends with (PEFT matches a module
// when its name equals an entry or ends with "." + entry), so BERT's query
// gives "query" but an MLP "output.dense" beside an untargeted
// "attention.output.dense" gives one entry per layer. Sorted, distinct.
std::vector<std::string> peftTargetModules(const PeftPlanInfo &info);

// adapter_config.json's text.
std::string peftAdapterConfig(const PeftPlanInfo &info);

// Reads `savedPath` (a galaxy-run save of every parameter) and writes
// DIR/adapter_model.safetensors (the LoRA factors and the modules_to_save
// parameters, PEFT names), then DIR/adapter_config.json, each atomically;
// creates DIR when absent.
absl::Status writePeftAdapter(const std::string &savedPath,
                              const PeftPlanInfo &info, const std::string &dir);

// An adapter folder checked against the plan: its weights hold every LoRA
// factor of the plan under kPeftPrefix + name, with the plan's shapes, and
// nothing the plan lacks.
struct PeftAdapter {
  io::SafetensorsFile weights;
  std::vector<std::string> warnings; // differences that change no weight
};

// InvalidArgument / NotFound naming the key and the fix for: no folder or
// files, another peft_type, r or lora_alpha other than the plan's, rsLoRA,
// DoRA, rank/alpha patterns, trained biases, another task_type,
// target_modules that select other modules than the plan's LoRA, a missing
// or extra LoRA tensor, a tensor of another shape.
absl::StatusOr<PeftAdapter> readPeftAdapter(const std::string &dir,
                                            const PeftPlanInfo &info);

} // namespace galaxy::rt
