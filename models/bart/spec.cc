// BART as the registry sees it: inputs per task, PEFT targets (Hugging Face
// PEFT's module names), the layer sequence (encoder then decoder), defaults
// and value checks.
#include "models/bart/spec.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/config/split.h"

namespace galaxy::models {
namespace {

std::vector<ModelInput> bartInputs(const config::GalaxyConfig &c) {
  const int64_t b = c.batch_size, s = c.pad_size, t = bartTargetLength(c);
  // Source positions are S (queries) / K (keys); the decoder's are T
  // (queries) / TK (keys), so a split of one sequence never applies to the
  // other. The data side builds the decoder's inputs
  // (shift_tokens_right of the labels, or of input_ids for classification)
  // and their padding mask. Side-only has no backbone: its taps replace the
  // ids (the masks still index keys).
  const bool sideOnly = c.use_side_only;
  std::vector<ModelInput> in;
  if (!sideOnly)
    in.push_back({"input_ids", true, {b, s}, "B,S"});
  in.push_back({"attention_mask", false, {b, s}, "B,K"});
  if (!sideOnly)
    in.push_back({"decoder_input_ids", true, {b, t}, "B,T"});
  in.push_back({"decoder_attention_mask", false, {b, t}, "B,TK"});
  if (c.task == "classification") {
    in.push_back({"labels", true, {b}, "B"});
    in.push_back({"eos_index", true, {b}, "B"});
  } else {
    in.push_back({"labels", true, {b, t}, "B,T"});
    in.push_back({"num_targets", false, {}, ""});
  }
  if (sideOnly) {
    std::vector<ModelInput> taps = bartTaps(c);
    in.insert(in.end(), taps.begin(), taps.end());
  }
  return in;
}

std::vector<LayerGroup> bartLayers(const config::GalaxyConfig &c) {
  return {{"encoder", c.num_hidden_layers}, {"decoder", c.decoder_layers}};
}

// Hugging Face's BartConfig defaults (bart-large's shape).
void bartDefaults(config::GalaxyConfig &c) {
  c.vocab_size = 50265;
  c.hidden_size = 1024;
  c.num_hidden_layers = 12;
  c.decoder_layers = 12;
  c.num_attention_heads = 16;
  c.decoder_attention_heads = 16;
  c.intermediate_size = 4096;
  c.decoder_ffn_dim = 4096;
  c.max_position_embeddings = 1024;
  c.hidden_act = config::Activation::kGelu;
  c.hidden_dropout_prob = 0.1;
  c.attention_dropout = 0.0;
  c.activation_dropout = 0.0;
  c.classifier_dropout = 0.0;
  c.layer_norm_eps = 1e-5; // nn.LayerNorm's default, which BART uses
  c.pad_token_id = 1;
  c.bos_token_id = 0;
  c.eos_token_id = 2;
  c.decoder_start_token_id = 2;
  c.lora_target_modules = {"q_proj", "v_proj"};
}

absl::Status bartCheck(const config::GalaxyConfig &c) {
  auto bad = [](const std::string &m) { return absl::InvalidArgumentError(m); };
  for (auto [key, heads, ffn] :
       {std::tuple{"encoder", c.num_attention_heads, c.intermediate_size},
        std::tuple{"decoder", c.decoder_attention_heads, c.decoder_ffn_dim}}) {
    if (heads <= 0 || c.hidden_size % heads != 0)
      return bad(absl::StrCat("d_model ", c.hidden_size,
                              " is not divisible by ", key, "_attention_heads ",
                              heads));
    if (ffn <= 0)
      return bad(absl::StrCat(key, "_ffn_dim = ", ffn, " must be positive"));
  }
  if (c.decoder_layers < 0)
    return bad(
        absl::StrCat("decoder_layers = ", c.decoder_layers, " must be >= 0"));
  const int64_t t = bartTargetLength(c);
  for (auto [key, len] :
       {std::pair{"pad_size", c.pad_size}, std::pair{"target_pad_size", t}})
    if (len > c.max_position_embeddings)
      return bad(absl::StrCat(
          key, " ", len, " exceeds max_position_embeddings ",
          c.max_position_embeddings, " (BART's learned positions)"));
  for (auto [key, p] : {std::pair{"dropout", c.hidden_dropout_prob},
                        std::pair{"attention_dropout", c.attention_dropout},
                        std::pair{"activation_dropout", c.activation_dropout},
                        std::pair{"classifier_dropout", c.classifier_dropout}})
    if (!(p >= 0 && p < 1))
      return bad(absl::StrCat(key, " = ", p, " is outside [0, 1)"));
  // Sequence parallelism splits the target (T) in seq_scatter_list's
  // proportion, boundaries rounded (config::proportionalSplit, as the
  // partitioner does): every rank needs at least one target position.
  using config::BlockMethod;
  using config::ParallelMode;
  const bool pp = c.parallel_mode == ParallelMode::kPP;
  const ParallelMode group = pp ? c.pp_group_mode : c.parallel_mode;
  const bool sp = group == ParallelMode::kSP ||
                  (group == ParallelMode::kGalaxy &&
                   (c.att_parallel_method == BlockMethod::kSP ||
                    c.con_parallel_method == BlockMethod::kSP ||
                    c.mlp_parallel_method == BlockMethod::kSP));
  if (sp && !c.seq_scatter_list.empty()) {
    const std::vector<int64_t> target =
        config::proportionalSplit(c.seq_scatter_list, t);
    if (std::count(target.begin(), target.end(), 0))
      return bad(absl::StrCat(
          "seq_scatter_list [", absl::StrJoin(c.seq_scatter_list, ", "),
          "] splits the target's ", t, " positions (target_pad_size) as [",
          absl::StrJoin(target, ", "),
          "] in the same proportion: every rank needs at least one; give "
          "the small shares more positions or lengthen target_pad_size"));
  }
  // The shared checks cover d_model, encoder_ffn_dim and the encoder heads.
  if (c.use_side || c.use_side_only) {
    const int64_t r = c.side_reduction_factor;
    if (c.decoder_ffn_dim % r != 0)
      return bad(absl::StrCat("side_reduction_factor ", r,
                              " does not divide decoder_ffn_dim ",
                              c.decoder_ffn_dim,
                              " (the side decoder's FFN is decoder_ffn_dim / "
                              "side_reduction_factor wide)"));
    if ((c.hidden_size / r) % c.decoder_attention_heads != 0)
      return bad(absl::StrCat(
          "the side width d_model / side_reduction_factor = ",
          c.hidden_size / r, " is not divisible by decoder_attention_heads ",
          c.decoder_attention_heads,
          " (the side network keeps the head "
          "count)"));
  }
  return absl::OkStatus();
}

} // namespace

int64_t bartTargetLength(const config::GalaxyConfig &c) {
  if (c.task == "classification" || c.target_pad_size <= 0)
    return c.pad_size;
  return c.target_pad_size;
}

std::vector<ModelInput> bartTaps(const config::GalaxyConfig &c) {
  const int64_t b = c.batch_size, h = c.hidden_size;
  std::vector<ModelInput> taps;
  for (auto [part, len, layers, seq] :
       {std::tuple{"encoder", c.pad_size, c.num_hidden_layers, "B,S,H"},
        std::tuple{"decoder", bartTargetLength(c), c.decoder_layers,
                   "B,T,H"}}) {
    const std::string p = absl::StrCat("tap.", part, ".");
    taps.push_back({p + "embeddings", false, {b, len, h}, seq});
    for (int64_t i = 0; i < layers; ++i)
      taps.push_back({absl::StrCat(p, "layer.", i), false, {b, len, h}, seq});
  }
  return taps;
}

const ModelSpec &bartSpec() {
  static const ModelSpec spec = {
      .modelType = "bart",
      .recognisingKeys = {"d_model", "encoder_layers", "decoder_layers",
                          "encoder_attention_heads", "decoder_attention_heads",
                          "encoder_ffn_dim", "decoder_ffn_dim"},
      .inputs = bartInputs,
      // Hugging Face PEFT's names, with its semantics: a name reaches every
      // module so called, so the attention projections are also the
      // decoder's cross-attention's (encoder_attn.*).
      .peftTargets = {{"q_proj", {"self_attn.q_proj", "encoder_attn.q_proj"}},
                      {"k_proj", {"self_attn.k_proj", "encoder_attn.k_proj"}},
                      {"v_proj", {"self_attn.v_proj", "encoder_attn.v_proj"}},
                      {"out_proj",
                       {"self_attn.out_proj", "encoder_attn.out_proj"}},
                      {"fc1", {"fc1"}},
                      {"fc2", {"fc2"}}},
      .layerPrefixes = {"model.encoder.layers.", "model.decoder.layers."},
      .adapterAfter = {"out_proj", "fc2"},
      .alwaysTrainable = {"classification_head."},
      .layers = bartLayers,
      .layerCountKey = "encoder_layers + decoder_layers",
      .tasks = {"seq2seq", "classification"},
      .setDefaults = bartDefaults,
      // BartConfig's names for the fields every family has.
      .keyAliases = {{"hidden_size", "d_model"},
                     {"initializer_range", "init_std"},
                     {"num_hidden_layers", "encoder_layers"},
                     {"num_attention_heads", "encoder_attention_heads"},
                     {"intermediate_size", "encoder_ffn_dim"},
                     {"hidden_dropout_prob", "dropout"},
                     {"hidden_act", "activation_function"}},
      // The prototype's BART configs carry BERT's num_hidden_layers beside
      // encoder_layers / decoder_layers.
      .keyWarnings = {{"num_hidden_layers",
                       "read as encoder_layers (BartConfig's alias), which "
                       "encoder_layers overrides when both are given"}},
      .activations = {config::Activation::kGelu, config::Activation::kGeluNew,
                      config::Activation::kRelu},
      .checkValues = bartCheck,
  };
  return spec;
}

} // namespace galaxy::models
