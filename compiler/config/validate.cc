// Per-key value checks: each key on its own and against the keys it depends
// on; nothing here depends on the parallel mode or the world size.
#include "compiler/config/validate.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/error_text.h"
#include "models/registry.h"
#include "runtime/plan/size_limits.h"

namespace galaxy::config {
namespace {

// Dropout-like probabilities; written so that NaN fails too.
absl::Status checkProbability(const GalaxyConfig &c, const char *key,
                              double p) {
  if (!(p >= 0.0 && p < 1.0))
    return bad(c, absl::StrCat(key, " = ", p, " is outside [0, 1)"));
  return absl::OkStatus();
}

struct Sized {
  const char *key;
  int64_t value;
};

std::string sizedText(const std::vector<Sized> &factors) {
  std::vector<std::string> parts;
  for (const Sized &f : factors)
    parts.push_back(absl::StrCat(f.key, " ", f.value));
  return absl::StrJoin(parts, " x ");
}

// Limits no model a user means to train reaches (runtime/plan/size_limits.h);
// past them the compiler's shape products would wrap. Runs after the
// positivity checks, so every factor here is >= 1.
absl::Status checkSizeLimits(const GalaxyConfig &c,
                             const std::vector<Sized> &sized) {
  for (const Sized &s : sized)
    if (s.value > plan::kMaxDimension)
      return bad(c, absl::StrCat(s.key, " = ", s.value, " exceeds the limit ",
                                 plan::kMaxDimension,
                                 " (2^31 - 1: ids, labels and positions are "
                                 "32-bit)"));
  // The biggest tensors a transformer of this config holds, by the keys that
  // size them.
  struct Tensor {
    const char *what;
    std::vector<Sized> factors;
  };
  const Sized hidden{"hidden_size", c.hidden_size},
      batch{"batch_size", c.batch_size}, seq{"pad_size", c.pad_size};
  const Tensor tensors[] = {
      {"the word embedding table", {{"vocab_size", c.vocab_size}, hidden}},
      {"the position embedding table",
       {{"max_position_embeddings", c.max_position_embeddings}, hidden}},
      {"the token type embedding table",
       {{"type_vocab_size", c.type_vocab_size}, hidden}},
      {"an attention weight", {hidden, hidden}},
      {"an intermediate weight",
       {hidden, {"intermediate_size", c.intermediate_size}}},
      {"the classifier weight", {hidden, {"num_classes", c.num_classes}}},
      {"the hidden states", {batch, seq, hidden}},
      {"an intermediate activation",
       {batch, seq, {"intermediate_size", c.intermediate_size}}},
      {"the attention scores",
       {batch, {"num_attention_heads", c.num_attention_heads}, seq, seq}},
  };
  for (const Tensor &t : tensors) {
    std::vector<int64_t> dims;
    for (const Sized &f : t.factors)
      dims.push_back(f.value);
    std::optional<int64_t> n = plan::checkedNumel(dims);
    if (!n || *n > plan::kMaxTensorElements)
      return bad(c,
                 absl::StrCat(sizedText(t.factors), " = ",
                              n ? absl::StrCat(*n) : "more than 2^63",
                              " elements (", t.what, ") exceeds the limit of ",
                              plan::kMaxTensorElements,
                              " elements (2^40) in one tensor"));
  }
  // Parameters of a BERT-shaped model: embeddings, then per layer four
  // hidden x hidden and two hidden x intermediate weights (biases and norms
  // are noise at this scale). Each product is below 2^40 here, so only the
  // sums can overflow.
  const int64_t h = c.hidden_size;
  const int64_t embeddings =
      (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h;
  const int64_t perLayer = 4 * h * h + 2 * h * c.intermediate_size;
  std::optional<int64_t> layers =
      plan::checkedMul(c.num_hidden_layers, perLayer);
  std::optional<int64_t> params =
      layers ? plan::checkedAdd(embeddings, *layers) : std::nullopt;
  const int64_t limitBytes = plan::kMaxModelBytes;
  std::optional<int64_t> bytes =
      params ? plan::checkedMul(*params, plan::kElementBytes) : std::nullopt;
  if (!bytes || *bytes > limitBytes)
    return bad(c, absl::StrCat(
                      "the model's parameters take ",
                      bytes ? absl::StrCat("about ", *bytes) : "more than 2^63",
                      " bytes (num_hidden_layers ", c.num_hidden_layers,
                      ", hidden_size ", h, ", intermediate_size ",
                      c.intermediate_size, ", vocab_size ", c.vocab_size,
                      "), over the limit of ", limitBytes,
                      " bytes (2^46, 64 TiB)"));
  return absl::OkStatus();
}

absl::Status checkModel(const GalaxyConfig &c) {
  const std::vector<Sized> sized = {
      Sized{"vocab_size", c.vocab_size},
      Sized{"hidden_size", c.hidden_size},
      Sized{"num_hidden_layers", c.num_hidden_layers},
      Sized{"num_attention_heads", c.num_attention_heads},
      Sized{"intermediate_size", c.intermediate_size},
      Sized{"max_position_embeddings", c.max_position_embeddings},
      Sized{"type_vocab_size", c.type_vocab_size},
      Sized{"num_classes", c.num_classes},
      Sized{"batch_size", c.batch_size},
      Sized{"pad_size", c.pad_size},
      Sized{"num_microbatches", c.num_microbatches},
      Sized{"lora_dim", c.lora_dim},
      Sized{"adapter_reduction_dim", c.adapter_reduction_dim},
      Sized{"side_reduction_factor", c.side_reduction_factor}};
  for (const Sized &s : sized)
    if (s.value <= 0)
      return bad(c, absl::StrCat(s.key, " = ", s.value, " must be positive"));
  GALAXY_CONFIG_TRY(checkSizeLimits(c, sized));
  // A softmax over one class is 1 whatever the logits: loss 0, gradient 0,
  // accuracy 1; such a run trains nothing and reports success.
  if (c.num_classes < 2)
    return bad(c, absl::StrCat("num_classes = ", c.num_classes,
                               " must be at least 2 (with one class the "
                               "softmax is always 1: the loss is 0 and "
                               "nothing trains)"));

  if (c.hidden_size % c.num_attention_heads != 0)
    return bad(c, absl::StrCat("hidden_size ", c.hidden_size,
                               " is not divisible by num_attention_heads ",
                               c.num_attention_heads,
                               " (every head gets hidden_size / "
                               "num_attention_heads columns)"));
  if (c.pad_size > c.max_position_embeddings)
    return bad(c, absl::StrCat("pad_size ", c.pad_size,
                               " exceeds max_position_embeddings ",
                               c.max_position_embeddings,
                               " (positions 0..pad_size-1 need an embedding); "
                               "lower pad_size or raise "
                               "max_position_embeddings"));
  // The KV cache's slots are positions: RoPE has no table, but Hugging Face
  // (and the checkpoint's training) stop at max_position_embeddings.
  if (c.max_seq < 0 || c.max_seq > c.max_position_embeddings)
    return bad(c, absl::StrCat("max_seq ", c.max_seq,
                               " is outside [0, max_position_embeddings ",
                               c.max_position_embeddings,
                               "] (the KV cache's positions; 0: pad_size)"));
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
    return bad(c,
               absl::StrCat("pad_token_id = ", c.pad_token_id,
                            " is outside [0, vocab_size ", c.vocab_size, ")"));
  GALAXY_CONFIG_TRY(
      checkProbability(c, "hidden_dropout_prob", c.hidden_dropout_prob));
  GALAXY_CONFIG_TRY(checkProbability(c, "attention_probs_dropout_prob",
                                     c.attention_probs_dropout_prob));
  if (!(c.layer_norm_eps > 0))
    return bad(c, absl::StrCat("layer_norm_eps = ", c.layer_norm_eps,
                               " must be positive"));
  if (!(c.initializer_range >= 0))
    return bad(c, absl::StrCat("initializer_range = ", c.initializer_range,
                               " must be >= 0"));
  // The family's own checks (models/NAME/spec.cc).
  const models::ModelSpec *model = models::findModel(c.model_type);
  if (!model)
    return bad(c, std::string(models::noBuilderError(c.model_type).message()));
  // Empty: the family's default (a config built in code rather than parsed).
  if (!c.task.empty() && std::find(model->tasks.begin(), model->tasks.end(),
                                   c.task) == model->tasks.end()) {
    std::vector<std::string> tasks;
    for (const std::string &t : model->tasks)
      tasks.push_back(quoted(t));
    return bad(c, absl::StrCat("task = ", quoted(c.task), " is not one ",
                               c.model_type, " trains for; expected ",
                               absl::StrJoin(tasks, " or ")));
  }
  if (std::find(model->activations.begin(), model->activations.end(),
                c.hidden_act) == model->activations.end()) {
    std::vector<std::string> names;
    for (Activation a : model->activations)
      names.push_back(quoted(toString(a)));
    return bad(c, absl::StrCat("hidden_act = ", quoted(toString(c.hidden_act)),
                               " is not supported; expected ",
                               absl::StrJoin(names, " or ")));
  }
  if (model->checkValues)
    if (absl::Status s = model->checkValues(c); !s.ok())
      return bad(c, std::string(s.message()));
  return absl::OkStatus();
}

absl::Status checkTraining(const GalaxyConfig &c) {
  if (!(c.learning_rate >= 0))
    return bad(
        c, absl::StrCat("learning_rate = ", c.learning_rate, " must be >= 0"));
  if (!(c.weight_decay >= 0))
    return bad(
        c, absl::StrCat("weight_decay = ", c.weight_decay, " must be >= 0"));
  GALAXY_CONFIG_TRY(checkProbability(c, "adam_beta1", c.adam_beta1));
  GALAXY_CONFIG_TRY(checkProbability(c, "adam_beta2", c.adam_beta2));
  if (!(c.adam_epsilon > 0))
    return bad(c, absl::StrCat("adam_epsilon = ", c.adam_epsilon,
                               " must be positive"));
  if (c.num_epochs < 0)
    return bad(c, absl::StrCat("num_epochs = ", c.num_epochs, " must be >= 0"));
  if (c.seed < 0)
    return bad(c, absl::StrCat("seed = ", c.seed, " must be >= 0"));
  // Tiles hold whole batch items (compiler/CommTiling.h).
  if (c.comm_overlap_tiles < 1 || c.comm_overlap_tiles > c.batch_size)
    return bad(c, absl::StrCat("comm_overlap_tiles = ", c.comm_overlap_tiles,
                               " must be in [1, batch_size ", c.batch_size,
                               "] (1 = no tiling; each tile holds whole "
                               "batch items)"));
  return absl::OkStatus();
}

absl::Status checkPeftValues(const GalaxyConfig &c, PeftMethod method) {
  if (!(c.lora_alpha > 0))
    return bad(
        c, absl::StrCat("lora_alpha = ", c.lora_alpha, " must be positive"));
  GALAXY_CONFIG_TRY(checkProbability(c, "lora_dropout", c.lora_dropout));
  // The targets are the model's (models/NAME/spec.cc).
  const models::ModelSpec *model = models::findModel(c.model_type);
  if (!model)
    return bad(c, std::string(models::noBuilderError(c.model_type).message()));
  std::set<std::string> seen;
  for (const std::string &m : c.lora_target_modules) {
    if (std::none_of(
            model->peftTargets.begin(), model->peftTargets.end(),
            [&](const models::PeftTarget &t) { return t.name == m; })) {
      std::vector<std::string> allowed;
      for (const models::PeftTarget &t : model->peftTargets)
        allowed.push_back(quoted(t.name));
      return bad(c, absl::StrCat("lora_target_modules entry ", quoted(m),
                                 " is not allowed for ", c.model_type,
                                 "; expected some of ",
                                 absl::StrJoin(allowed, ", ")));
    }
    if (!seen.insert(m).second)
      return bad(c, absl::StrCat("lora_target_modules lists ", quoted(m),
                                 " twice; list each module once"));
  }
  if (method == PeftMethod::kLora && c.lora_target_modules.empty())
    return bad(c, "lora_target_modules is empty but use_lora is true; name "
                  "at least one module (e.g. [\"query\", \"value\"])");
  if (method == PeftMethod::kAdapter &&
      c.hidden_size % c.adapter_reduction_dim != 0)
    return bad(c,
               absl::StrCat("adapter_reduction_dim ", c.adapter_reduction_dim,
                            " does not divide hidden_size ", c.hidden_size,
                            " (the adapter is hidden_size / "
                            "adapter_reduction_dim wide)"));
  if (method == PeftMethod::kSide || method == PeftMethod::kSideOnly) {
    const int64_t r = c.side_reduction_factor;
    if (c.hidden_size % r != 0)
      return bad(c, absl::StrCat("side_reduction_factor ", r,
                                 " does not divide hidden_size ", c.hidden_size,
                                 " (the side network is hidden_size / "
                                 "side_reduction_factor wide)"));
    if (c.intermediate_size % r != 0)
      return bad(c, absl::StrCat("side_reduction_factor ", r,
                                 " does not divide intermediate_size ",
                                 c.intermediate_size,
                                 " (the side MLP is intermediate_size / "
                                 "side_reduction_factor wide)"));
    if ((c.hidden_size / r) % c.num_attention_heads != 0)
      return bad(c, absl::StrCat(
                        "the side width hidden_size / side_reduction_factor = ",
                        c.hidden_size / r,
                        " is not divisible by num_attention_heads ",
                        c.num_attention_heads,
                        " (the side network keeps the head count)"));
  }
  return absl::OkStatus();
}

absl::Status checkMethods(const GalaxyConfig &c) {
  for (auto [key, m] :
       {std::pair{"att_parallel_method", c.att_parallel_method},
        std::pair{"mlp_parallel_method", c.mlp_parallel_method}})
    if (m == BlockMethod::kNone)
      return bad(c, absl::StrCat(key, " = \"None\" is not supported; expected "
                                      "\"TP\" or \"SP\""));
  if (c.con_parallel_method == BlockMethod::kTP)
    return bad(c, "con_parallel_method = \"TP\" is not supported; expected "
                  "\"None\" or \"SP\" (CON blocks are elementwise+LayerNorm: "
                  "shard them by sequence)");
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<PeftMethod> peftMethod(const GalaxyConfig &c) {
  std::vector<std::string> on;
  if (c.full_model)
    on.push_back("full_model");
  if (c.use_lora)
    on.push_back("use_lora");
  if (c.use_adapter)
    on.push_back("use_adapter");
  // use_side_only refines use_side; both set is one method.
  if (c.use_side && !c.use_side_only)
    on.push_back("use_side");
  if (c.use_side_only)
    on.push_back("use_side_only");
  if (on.size() > 1) {
    std::string names =
        on.size() == 2
            ? absl::StrCat(on[0], " and ", on[1], " are both true")
            : absl::StrCat(absl::StrJoin(on.begin(), on.end() - 1, ", "),
                           " and ", on.back(), " are all true");
    return bad(c, absl::StrCat(names, "; choose one PEFT method"));
  }
  if (c.use_lora)
    return PeftMethod::kLora;
  if (c.use_adapter)
    return PeftMethod::kAdapter;
  if (c.use_side_only)
    return PeftMethod::kSideOnly;
  if (c.use_side)
    return PeftMethod::kSide;
  return PeftMethod::kFull;
}

absl::StatusOr<PeftMethod> checkValues(const GalaxyConfig &c) {
  GALAXY_CONFIG_TRY(checkModel(c));
  GALAXY_CONFIG_TRY(checkTraining(c));
  absl::StatusOr<PeftMethod> peft = peftMethod(c);
  if (!peft.ok())
    return peft.status();
  GALAXY_CONFIG_TRY(checkPeftValues(c, *peft));
  GALAXY_CONFIG_TRY(checkMethods(c));
  return *peft;
}

} // namespace galaxy::config
