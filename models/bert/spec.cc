// BertForSequenceClassification as the registry sees it: its inputs, loss,
// PEFT-targetable linears (Hugging Face module names) and layer sequence.
#include "models/bert/spec.h"

namespace galaxy::models {
namespace {

std::vector<ModelInput> bertInputs(const config::GalaxyConfig &c) {
  const int64_t b = c.batch_size, s = c.pad_size, h = c.hidden_size;
  // Side-only has no backbone: its taps replace the ids (reference-semantics
  // §side-only); the mask indexes keys.
  const bool sideOnly = c.use_side_only;
  std::vector<ModelInput> in;
  if (!sideOnly)
    in.push_back({"input_ids", true, {b, s}, "B,S"});
  in.push_back({"attention_mask", false, {b, s}, "B,K"});
  if (!sideOnly)
    in.push_back({"token_type_ids", true, {b, s}, "B,S"});
  in.push_back({"labels", true, {b}, "B"});
  if (sideOnly) {
    in.push_back({"tap.embeddings", false, {b, s, h}, "B,S,H"});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      in.push_back(
          {"tap.layer." + std::to_string(i), false, {b, s, h}, "B,S,H"});
  }
  return in;
}

std::vector<LayerGroup> bertLayers(const config::GalaxyConfig &c) {
  return {{"encoder", c.num_hidden_layers}};
}

} // namespace

const ModelSpec &bertSpec() {
  static const ModelSpec spec = {
      .modelType = "bert",
      .recognisingKeys = {"type_vocab_size", "hidden_dropout_prob",
                          "attention_probs_dropout_prob"},
      .inputs = bertInputs,
      .peftTargets = {{"query", {"attention.self.query"}},
                      {"key", {"attention.self.key"}},
                      {"value", {"attention.self.value"}},
                      {"attention_output", {"attention.output.dense"}},
                      {"intermediate", {"intermediate.dense"}},
                      {"output", {"output.dense"}}},
      .layerPrefixes = {"bert.encoder.layer."},
      .adapterAfter = {"attention_output", "output"},
      .alwaysTrainable = {"classifier."},
      .layers = bertLayers,
      .layerCountKey = "num_hidden_layers",
      .tasks = {"classification"},
      .activations = {config::Activation::kGelu, config::Activation::kGeluNew},
  };
  return spec;
}

} // namespace galaxy::models
