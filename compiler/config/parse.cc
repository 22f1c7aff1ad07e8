#include "compiler/config/parse.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "compiler/config/enum_names.h"
#include "models/registry.h"
#include "nlohmann/json.hpp"

namespace galaxy::config {
namespace {

using nlohmann::json;

std::string show(const json &v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string typeOf(const json &v) {
  if (v.is_null())
    return "null";
  if (v.is_boolean())
    return "a boolean";
  if (v.is_number_integer())
    return "an integer";
  if (v.is_number())
    return "a number";
  if (v.is_string())
    return "a string";
  if (v.is_array())
    return "an array";
  return "an object";
}

// Reads typed values out of the top-level object, remembering which keys it
// consumed (the rest are unknown) and the first error (later reads no-op, so
// the caller checks status() once instead of after every key).
class Reader {
public:
  // `aliases`: (key, the model family's own name for it), e.g. BART's
  // d_model for hidden_size: when the file spells the family's name, it is
  // read (and named in messages) instead.
  Reader(const json &obj, std::string prefix,
         const std::vector<std::pair<std::string, std::string>> &aliases = {})
      : obj_(obj), prefix_(std::move(prefix)) {
    for (const auto &[key, alias] : aliases)
      aliases_[key] = alias;
  }

  const absl::Status &status() const { return status_; }
  bool has(const std::string &key) const { return obj_.contains(key); }

  void read(const std::string &name, int64_t &out) {
    const std::string key = spelling(name);
    if (const json *v = find(key))
      toInt(key, *v, out);
  }
  void read(const std::string &name, int &out) {
    const std::string key = spelling(name);
    int64_t wide = out;
    if (const json *v = find(key)) {
      if (v->is_null()) { // world_size: null means "not given"
        out = 0;
        return;
      }
      if (!toInt(key, *v, wide))
        return;
      if (wide < std::numeric_limits<int>::min() ||
          wide > std::numeric_limits<int>::max())
        fail(absl::StrCat(key, " = ", show(*v), " is out of range"));
      else
        out = static_cast<int>(wide);
    }
  }
  void read(const std::string &name, double &out) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    if (v->is_number())
      out = v->get<double>();
    else
      wrongType(key, *v, "a number");
  }
  // The prototype sometimes writes flags as 0/1.
  void read(const std::string &name, bool &out) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    if (v->is_boolean())
      out = v->get<bool>();
    else if (v->is_number_integer() && (*v == 0 || *v == 1))
      out = *v == 1;
    else
      wrongType(key, *v, "true or false (or 0/1)");
  }
  void read(const std::string &name, std::string &out) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    if (v->is_string())
      out = v->get<std::string>();
    else
      wrongType(key, *v, "a string");
  }
  // Lists: null means "not given" (the prototype writes None).
  void read(const std::string &name, std::vector<int64_t> &out) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    out.clear();
    if (v->is_null())
      return;
    if (!v->is_array()) {
      wrongType(key, *v, "a list of integers");
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      int64_t x = 0;
      if (!toInt(absl::StrCat(key, "[", i, "]"), (*v)[i], x))
        return;
      out.push_back(x);
    }
  }
  void read(const std::string &name, std::vector<std::string> &out) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    if (!v->is_array()) {
      wrongType(key, *v, "a list of strings");
      return;
    }
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const json &e = (*v)[i];
      if (!e.is_string()) {
        wrongType(absl::StrCat(key, "[", i, "]"), e, "a string");
        return;
      }
      out.push_back(e.get<std::string>());
    }
  }
  // A string key naming an enum value; `nullValue`, when given, is what JSON
  // null means (con_parallel_method: null is None).
  template <typename E, typename ParseFn>
  void readEnum(const std::string &name, E &out, ParseFn parse,
                std::optional<E> nullValue = std::nullopt) {
    const std::string key = spelling(name);
    const json *v = find(key);
    if (!v)
      return;
    if (v->is_null() && nullValue) {
      out = *nullValue;
      return;
    }
    if (!v->is_string()) {
      wrongType(key, *v, "a string");
      return;
    }
    absl::StatusOr<E> e = parse(v->get<std::string>());
    if (e.ok())
      out = *e;
    else
      fail(absl::StrCat(key, " = ", e.status().message()));
  }

  void fail(const std::string &msg) {
    if (status_.ok())
      status_ = absl::InvalidArgumentError(prefix_ + msg);
  }

  std::vector<std::string> unknownKeys() const {
    std::vector<std::string> out;
    for (const auto &[key, value] : obj_.items())
      if (!used_.count(key))
        out.push_back(key);
    return out;
  }

private:
  // The key the file uses for `name`: the family's alias when the file has
  // it (both spellings count as read).
  std::string spelling(const std::string &name) {
    used_.insert(name);
    auto a = aliases_.find(name);
    return a != aliases_.end() && obj_.contains(a->second) ? a->second : name;
  }
  const json *find(const std::string &key) {
    used_.insert(key);
    if (!status_.ok())
      return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void wrongType(const std::string &key, const json &v,
                 const std::string &expected) {
    fail(absl::StrCat(key, " = ", show(v), " is ", typeOf(v), "; expected ",
                      expected));
  }
  // Integral floats (4.0) are accepted: some writers emit every number as one.
  bool toInt(const std::string &key, const json &v, int64_t &out) {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() >
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(absl::StrCat(key, " = ", show(v), " is out of range"));
        return false;
      }
      out = static_cast<int64_t>(v.get<uint64_t>());
      return true;
    }
    if (v.is_number_integer()) {
      out = v.get<int64_t>();
      return true;
    }
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
        out = static_cast<int64_t>(d);
        return true;
      }
      fail(absl::StrCat(key, " = ", show(v),
                        " is not an integer; expected an integer"));
      return false;
    }
    wrongType(key, v, "an integer");
    return false;
  }

  const json &obj_;
  std::string prefix_;
  std::set<std::string> used_;
  std::map<std::string, std::string> aliases_;
  absl::Status status_;
};

// lora_dim has three spellings in the prototype; they must agree if repeated.
void readLoraDim(Reader &r, int64_t &out) {
  std::optional<std::pair<std::string, int64_t>> first;
  for (const char *key : {"lora_dim", "lora_att_dim", "lora_r"}) {
    if (!r.has(key)) {
      r.read(key, out); // marks the spelling as known
      continue;
    }
    int64_t v = 0;
    r.read(key, v);
    if (!r.status().ok())
      return;
    if (first && first->second != v) {
      r.fail(absl::StrCat(first->first, " = ", first->second, " and ", key,
                          " = ", v,
                          " disagree (both set the LoRA rank); keep one"));
      return;
    }
    if (!first)
      first.emplace(key, v);
    out = v;
  }
}

void readAll(Reader &r, GalaxyConfig &c) {
  // Model
  r.read("vocab_size", c.vocab_size);
  r.read("hidden_size", c.hidden_size);
  r.read("num_hidden_layers", c.num_hidden_layers);
  r.read("num_attention_heads", c.num_attention_heads);
  r.read("intermediate_size", c.intermediate_size);
  r.read("max_position_embeddings", c.max_position_embeddings);
  r.read("type_vocab_size", c.type_vocab_size);
  r.read("hidden_dropout_prob", c.hidden_dropout_prob);
  r.read("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  r.read("layer_norm_eps", c.layer_norm_eps);
  r.read("initializer_range", c.initializer_range);
  r.readEnum("hidden_act", c.hidden_act, parseActivation);
  r.read("num_classes", c.num_classes);
  r.read("pad_token_id", c.pad_token_id);
  r.read("model_type", c.model_type);
  r.read("task", c.task);
  r.read("num_key_value_heads", c.num_key_value_heads);
  r.read("rms_norm_eps", c.rms_norm_eps);
  r.read("rope_theta", c.rope_theta);
  r.read("tie_word_embeddings", c.tie_word_embeddings);
  r.read("attention_bias", c.attention_bias);
  r.read("mlp_bias", c.mlp_bias);
  r.read("attention_dropout", c.attention_dropout);
  // BART's own fields, which no other family reads (its names for the shared
  // ones are aliases: ModelSpec::keyAliases).
  r.read("decoder_layers", c.decoder_layers);
  r.read("decoder_attention_heads", c.decoder_attention_heads);
  r.read("decoder_ffn_dim", c.decoder_ffn_dim);
  r.read("activation_dropout", c.activation_dropout);
  r.read("classifier_dropout", c.classifier_dropout);
  r.read("scale_embedding", c.scale_embedding);
  r.read("bos_token_id", c.bos_token_id);
  r.read("eos_token_id", c.eos_token_id);
  r.read("decoder_start_token_id", c.decoder_start_token_id);
  r.read("target_pad_size", c.target_pad_size);
  r.read("max_seq", c.max_seq);
  r.read("inference", c.inference);
  // Training
  r.read("batch_size", c.batch_size);
  r.read("pad_size", c.pad_size);
  r.read("learning_rate", c.learning_rate);
  r.readEnum("optimizer", c.optimizer, parseOptimizer);
  r.read("weight_decay", c.weight_decay);
  r.read("adam_beta1", c.adam_beta1);
  r.read("adam_beta2", c.adam_beta2);
  r.read("adam_epsilon", c.adam_epsilon);
  r.read("num_epochs", c.num_epochs);
  r.read("seed", c.seed);
  r.readEnum("dtype", c.dtype, parseDType);
  // PEFT
  r.read("full_model", c.full_model);
  r.read("use_lora", c.use_lora);
  readLoraDim(r, c.lora_dim);
  r.read("lora_alpha", c.lora_alpha);
  r.read("lora_dropout", c.lora_dropout);
  r.read("lora_target_modules", c.lora_target_modules);
  r.read("fan_in_fan_out", c.fan_in_fan_out);
  r.read("merge_weights", c.merge_weights);
  r.read("use_adapter", c.use_adapter);
  r.read("adapter_reduction_dim", c.adapter_reduction_dim);
  r.readEnum("non_linearity", c.non_linearity, parseActivation);
  r.read("use_side", c.use_side);
  r.read("use_side_only", c.use_side_only);
  r.read("side_reduction_factor", c.side_reduction_factor);
  // Parallel
  ModeSpec modeSpec{c.parallel_mode, c.pp_group_mode};
  r.readEnum("parallel_mode", modeSpec, parseModeSpec);
  c.parallel_mode = modeSpec.mode;
  c.pp_group_mode = modeSpec.group;
  r.read("world_size", c.world_size);
  r.read("tp_num_attention_heads_list", c.tp_num_attention_heads_list);
  r.read("tp_intermediate_size_list", c.tp_intermediate_size_list);
  r.read("seq_scatter_list", c.seq_scatter_list);
  r.read("stage_num_hidden_layers_list", c.stage_num_hidden_layers_list);
  r.read("dp_batch_list", c.dp_batch_list);
  r.readEnum("att_parallel_method", c.att_parallel_method, parseBlockMethod);
  r.readEnum("con_parallel_method", c.con_parallel_method, parseBlockMethod,
             std::optional(BlockMethod::kNone));
  r.readEnum("mlp_parallel_method", c.mlp_parallel_method, parseBlockMethod);
  r.read("num_microbatches", c.num_microbatches);
  r.read("pp_microbatch_list", c.pp_microbatch_list);
  r.readEnum("pp_schedule", c.pp_schedule, parsePipelineSchedule);
  r.read("comm_overlap_tiles", c.comm_overlap_tiles);
}

} // namespace

absl::StatusOr<GalaxyConfig> parseConfig(const std::string &jsonText,
                                         const std::string &sourceName) {
  const std::string prefix = sourceName.empty() ? "" : sourceName + ": ";
  json doc;
  try {
    doc = json::parse(jsonText);
  } catch (const json::exception &e) {
    // parse_error, and out_of_range for a number past double's range
    // (1e400), which used to end galaxyc by std::terminate.
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "not valid JSON: ", e.what()));
  }
  if (!doc.is_object())
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "the config is ", typeOf(doc),
        "; expected a JSON object of keys such as {\"hidden_size\": 768}"));

  GalaxyConfig c;
  c.source = sourceName;
  // Which model the file describes comes first: a config of a model Galaxy
  // cannot build must say so before any key error, and a config without
  // model_type is recognised by its keys, never taken for the default model.
  // (A model_type that is not a string is left to readAll's type error.)
  {
    std::vector<std::string> keys;
    for (const auto &[key, value] : doc.items())
      keys.push_back(key);
    auto given = doc.find("model_type");
    std::optional<std::string> type;
    if (given != doc.end() && given->is_string())
      type = given->get<std::string>();
    if (given == doc.end() || type) {
      absl::StatusOr<std::string> model =
          models::identifyModel(keys, type ? &*type : nullptr);
      if (!model.ok())
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, model.status().message()));
      c.model_type = *model;
    }
  }
  const models::ModelSpec *spec = models::findModel(c.model_type);
  if (spec && spec->setDefaults)
    spec->setDefaults(c);
  Reader r(doc, prefix,
           spec ? spec->keyAliases
                : std::vector<std::pair<std::string, std::string>>{});
  readAll(r, c);
  if (!r.status().ok())
    return r.status();
  if (spec && c.task.empty() && !spec->tasks.empty())
    c.task = spec->tasks.front();
  if (spec)
    for (const auto &[key, text] : spec->keyWarnings)
      if (doc.contains(key))
        c.warnings.push_back(absl::StrCat(
            sourceName.empty() ? "config" : sourceName, ": ", key, ": ", text));

  // A file that turns a PEFT method on without mentioning full_model means
  // "not full"; only an explicit full_model: true conflicts (see validate).
  if (!doc.contains("full_model") &&
      (c.use_lora || c.use_adapter || c.use_side || c.use_side_only))
    c.full_model = false;
  // A microbatch list alone fixes the microbatch count.
  if (!doc.contains("num_microbatches") && !c.pp_microbatch_list.empty())
    c.num_microbatches = static_cast<int64_t>(c.pp_microbatch_list.size());

  for (const std::string &key : r.unknownKeys())
    c.warnings.push_back(
        absl::StrCat("unknown key '", key, "' in ",
                     sourceName.empty() ? "config" : sourceName, "; ignored"));
  return c;
}

absl::StatusOr<GalaxyConfig> loadConfig(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read the config file; check the path"));
  std::stringstream text;
  text << in.rdbuf();
  return parseConfig(text.str(), path);
}

} // namespace galaxy::config
