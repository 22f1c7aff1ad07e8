// The model registry: model_type -> what the compiler and the config checks
// need to know about a model family, declared by the family's own folder
// (models/NAME/spec.cc). Nothing below models/ names a model: the compiler
// asks this registry, the passes read what the builder stamps on the IR.
//
// No MLIR here: the config library (and through it galaxy-run) links this.
// Building the IR is models/build.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"

namespace galaxy::models {

// One program input of the model's @forward, in argument order.
struct ModelInput {
  std::string name;   // the plan's input binding name (= the batch field)
  bool isInt = false; // i32 (ids, labels) or f32 (masks, activations)
  std::vector<int64_t> shape; // global shape, batch rows first
  std::string dims;           // model dimension names, e.g. "B,S"
};

// A linear PEFT may target: the config's name for it (lora_target_modules)
// and the Hugging Face module suffixes after "<layer prefix><N>." it reaches.
// Hugging Face PEFT matches a target_modules entry against every module of
// that name, so one name may reach several modules (BART's q_proj is both
// self_attn.q_proj and the decoder's encoder_attn.q_proj).
struct PeftTarget {
  std::string name;
  std::vector<std::string> moduleSuffixes;
};

// A run of consecutive layers (BERT: the encoder; BART: encoder then
// decoder). Pipeline stages cut the concatenation of the groups.
struct LayerGroup {
  std::string name;
  int64_t count = 0;
};

struct ModelSpec {
  std::string modelType;
  // Keys only this family's configs use; a config without model_type is
  // recognised by them.
  std::vector<std::string> recognisingKeys;
  // @forward's inputs for a config (batch rows = config batch_size).
  std::vector<ModelInput> (*inputs)(const config::GalaxyConfig &) = nullptr;
  // PEFT: targetable linears, the module prefixes of the layers they live in
  // (each followed by the layer number), which targets an adapter follows,
  // and parameter-name prefixes every PEFT method keeps trainable (the task
  // head).
  std::vector<PeftTarget> peftTargets;
  std::vector<std::string> layerPrefixes;
  std::vector<std::string> adapterAfter;
  std::vector<std::string> alwaysTrainable;
  // The layer sequence pipeline stages are cut from; block `layer`
  // attributes index it (0 .. total-1).
  std::vector<LayerGroup> (*layers)(const config::GalaxyConfig &) = nullptr;
  // The config key(s) the layer count comes from, for messages
  // ("num_hidden_layers").
  std::string layerCountKey;
  // The tasks the family trains for ("classification", "causal_lm"); the
  // first is the default of a config without "task".
  std::vector<std::string> tasks;
  // The family's defaults where they differ from GalaxyConfig's (which are
  // BERT's); applied before the file's keys are read.
  void (*setDefaults)(config::GalaxyConfig &) = nullptr;
  // The family's own names for shared config keys, (key, family name), e.g.
  // BART's ("hidden_size", "d_model"): read under the family's name when the
  // file uses it; other families' files leave the name an unknown key.
  std::vector<std::pair<std::string, std::string>> keyAliases;
  // Keys that parse but mean something the user may not expect here: a
  // warning each, when the file has the key.
  std::vector<std::pair<std::string, std::string>> keyWarnings;
  // The hidden_act values the family's MLP supports (first: the default).
  std::vector<config::Activation> activations;
  // The family's own value checks (the shared ones are in
  // compiler/config/validate.cc); the message names the key and the fix.
  absl::Status (*checkValues)(const config::GalaxyConfig &) = nullptr;
};

// The registered models, the default (a config with neither model_type nor
// another family's keys) first.
const std::vector<const ModelSpec *> &registeredModels();
// nullptr when `modelType` has no builder.
const ModelSpec *findModel(const std::string &modelType);
// "bert" or "bert, llama": the registered model types, for messages.
std::string availableModels();

// The model_type a config means: `modelType` when the file names one, else
// the family whose recognising keys it uses (the default family when none).
// Errors (InvalidArgument) for a family with no builder yet, an unknown
// model_type, or keys of two families.
absl::StatusOr<std::string> identifyModel(const std::vector<std::string> &keys,
                                          const std::string *modelType);

// Total layers of the spec's layer sequence for `c`.
int64_t layerCount(const ModelSpec &spec, const config::GalaxyConfig &c);
// "model_type 'T'<recognisedBy> has no builder yet: available: bert"
// (InvalidArgument): the one refusal of a model that is not built.
absl::Status noBuilderError(const std::string &modelType,
                            const std::string &recognisedBy = "");

} // namespace galaxy::models
