// LLaMA as the registry sees it: inputs per task, PEFT targets (Hugging Face
// PEFT's module names), layer sequence, defaults and value checks.
#include "models/llama/spec.h"

#include "absl/strings/str_cat.h"

namespace galaxy::models {
namespace {

std::vector<ModelInput> llamaInputs(const config::GalaxyConfig &c) {
  const int64_t b = c.batch_size, s = c.pad_size;
  // The mask indexes keys (K): under sequence parallelism every rank needs
  // the whole row. Causal-LM labels are already shifted by the data loader
  // (labels[s] is the token after s, -100 where not counted), so they shard
  // with the positions; num_targets counts them over the global batch.
  std::vector<ModelInput> in = {{"input_ids", true, {b, s}, "B,S"},
                                {"attention_mask", false, {b, s}, "B,K"}};
  if (c.task == "classification") {
    in.push_back({"labels", true, {b}, "B"});
    in.push_back({"last_index", true, {b}, "B"});
  } else {
    in.push_back({"labels", true, {b, s}, "B,S"});
    in.push_back({"num_targets", false, {}, ""});
  }
  return in;
}

std::vector<LayerGroup> llamaLayers(const config::GalaxyConfig &c) {
  return {{"decoder", c.num_hidden_layers}};
}

// Hugging Face's LlamaConfig defaults (LLaMA-7B's shape); PEFT's default
// LoRA targets for LLaMA.
void llamaDefaults(config::GalaxyConfig &c) {
  c.vocab_size = 32000;
  c.hidden_size = 4096;
  c.intermediate_size = 11008;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.max_position_embeddings = 2048;
  c.hidden_act = config::Activation::kSwish;
  c.hidden_dropout_prob = 0.0;
  c.attention_probs_dropout_prob = 0.0;
  c.lora_target_modules = {"q_proj", "v_proj"};
}

absl::Status llamaCheck(const config::GalaxyConfig &c) {
  auto bad = [](const std::string &m) { return absl::InvalidArgumentError(m); };
  const int64_t heads = c.num_attention_heads;
  const int64_t kv = c.num_key_value_heads ? c.num_key_value_heads : heads;
  if (kv <= 0 || heads % kv != 0)
    return bad(absl::StrCat("num_key_value_heads = ", c.num_key_value_heads,
                            " does not divide num_attention_heads ", heads,
                            " (each KV head serves the same number of query "
                            "heads)"));
  if ((c.hidden_size / heads) % 2 != 0)
    return bad(absl::StrCat("the head size hidden_size / num_attention_heads "
                            "= ",
                            c.hidden_size / heads,
                            " is odd; rotary embeddings rotate pairs of "
                            "columns and need an even head size"));
  if (!(c.rms_norm_eps > 0))
    return bad(
        absl::StrCat("rms_norm_eps = ", c.rms_norm_eps, " must be positive"));
  if (!(c.rope_theta > 0))
    return bad(
        absl::StrCat("rope_theta = ", c.rope_theta, " must be positive"));
  if (!(c.attention_dropout >= 0 && c.attention_dropout < 1))
    return bad(absl::StrCat("attention_dropout = ", c.attention_dropout,
                            " is outside [0, 1)"));
  if (c.use_side || c.use_side_only)
    return bad("side-tuning (use_side / use_side_only) is not built for llama; "
               "use use_lora or use_adapter");
  return absl::OkStatus();
}

} // namespace

const ModelSpec &llamaSpec() {
  static const ModelSpec spec = {
      .modelType = "llama",
      .recognisingKeys = {"num_key_value_heads", "rms_norm_eps", "rope_theta",
                          "rope_scaling", "tie_word_embeddings",
                          "attention_bias", "mlp_bias"},
      // (attention_dropout is BART's key too: it recognises neither.)
      .inputs = llamaInputs,
      .peftTargets = {{"q_proj", {"self_attn.q_proj"}},
                      {"k_proj", {"self_attn.k_proj"}},
                      {"v_proj", {"self_attn.v_proj"}},
                      {"o_proj", {"self_attn.o_proj"}},
                      {"gate_proj", {"mlp.gate_proj"}},
                      {"up_proj", {"mlp.up_proj"}},
                      {"down_proj", {"mlp.down_proj"}}},
      .layerPrefixes = {"model.layers."},
      .adapterAfter = {"o_proj", "down_proj"},
      // The classification head trains under every PEFT method, as PEFT's
      // SEQ_CLS task does; a causal LM's lm_head stays frozen.
      .alwaysTrainable = {"score."},
      .layers = llamaLayers,
      .layerCountKey = "num_hidden_layers",
      .tasks = {"causal_lm", "classification"},
      .setDefaults = llamaDefaults,
      .keyWarnings = {{"lora_att_dim",
                       "read as the LoRA rank r (the prototype's LLaMA "
                       "ignored it and used r = 32)"}},
      .activations = {config::Activation::kSwish}, // SwiGLU
      .checkValues = llamaCheck,
  };
  return spec;
}

} // namespace galaxy::models
