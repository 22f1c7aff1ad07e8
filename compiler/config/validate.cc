// Per-key value checks: each key on its own and against the keys it depends
// on; nothing here depends on the parallel mode or the world size.
#include "compiler/config/validate.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/error_text.h"
#include "models/registry.h"

namespace galaxy::config {
namespace {


// Dropout-like probabilities; written so that NaN fails too.
absl::Status checkProbability(const GalaxyConfig &c, const char *key,
                              double p) {
  if (!(p >= 0.0 && p < 1.0))
    return bad(c, absl::StrCat(key, " = ", p, " is outside [0, 1)"));
  return absl::OkStatus();
}

absl::Status checkModel(const GalaxyConfig &c) {
  struct Sized {
    const char *key;
    int64_t value;
  };
  for (const Sized &s :
       {Sized{"vocab_size", c.vocab_size}, Sized{"hidden_size", c.hidden_size},
        Sized{"num_hidden_layers", c.num_hidden_layers},
        Sized{"num_attention_heads", c.num_attention_heads},
        Sized{"intermediate_size", c.intermediate_size},
        Sized{"max_position_embeddings", c.max_position_embeddings},
        Sized{"type_vocab_size", c.type_vocab_size},
        Sized{"num_classes", c.num_classes}, Sized{"batch_size", c.batch_size},
        Sized{"pad_size", c.pad_size},
        Sized{"num_microbatches", c.num_microbatches},
        Sized{"lora_dim", c.lora_dim},
        Sized{"adapter_reduction_dim", c.adapter_reduction_dim},
        Sized{"side_reduction_factor", c.side_reduction_factor}})
    if (s.value <= 0)
      return bad(c, absl::StrCat(s.key, " = ", s.value, " must be positive"));

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
  if (c.hidden_act != Activation::kGelu && c.hidden_act != Activation::kGeluNew)
    return bad(c, absl::StrCat("hidden_act = ", quoted(toString(c.hidden_act)),
                               " is not supported; expected \"gelu\" or "
                               "\"gelu_new\""));
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
    return bad(c, absl::StrCat("model_type '", c.model_type,
                               "' has no builder yet: available: ",
                               models::availableModels()));
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
