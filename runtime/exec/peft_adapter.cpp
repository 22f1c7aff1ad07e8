#include "runtime/exec/peft_adapter.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/io/text_file.h"

namespace fs = std::filesystem;

namespace galaxy::rt {

namespace {
const std::string kA = ".lora_A.weight", kB = ".lora_B.weight";
const std::string kPrefix = kPeftPrefix;

bool endsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool isLoraName(std::string_view name) {
  return name.find(".lora_") != std::string_view::npos;
}

// "a.b.c" -> "a.b"; "" for a name without a dot.
std::string moduleOf(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string()
                                       : std::string(name.substr(0, dot));
}

std::string shapeStr(const std::vector<int64_t> &s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

// Every module of the model that is not PEFT's own: each dotted prefix of a
// parameter name that is not a LoRA factor.
std::set<std::string> allModules(const PeftPlanInfo &info) {
  std::set<std::string> out;
  for (const ModelParam &p : info.params) {
    if (isLoraName(p.name))
      continue;
    for (size_t dot = p.name.find('.'); dot != std::string::npos;
         dot = p.name.find('.', dot + 1))
      out.insert(p.name.substr(0, dot));
  }
  return out;
}

// PEFT's rule for a list of target_modules (tuners_utils
// check_target_module_exists): equal to an entry or ending in "." + entry.
bool matchesEntry(const std::string &module, const std::string &entry) {
  return module == entry || endsWith(module, "." + entry);
}

// "bert.encoder.layer.0.attention.self.query" (a.k.a. PEFT's "query") for
// messages: the LoRA modules and what the plan calls them.
std::string listed(const std::vector<std::string> &v, size_t shown = 6) {
  if (v.size() <= shown)
    return absl::StrJoin(v, ", ");
  return absl::StrCat(absl::StrJoin(v.begin(), v.begin() + shown, ", "),
                      " and ", v.size() - shown, " more");
}

const ModelParam *findParam(const PeftPlanInfo &info, std::string_view name) {
  for (const ModelParam &p : info.params)
    if (p.name == name)
      return &p;
  return nullptr;
}

// Parameters an adapter folder holds: every LoRA factor and every parameter
// of a modules_to_save module.
bool inAdapter(const PeftPlanInfo &info, const std::string &name) {
  if (isLoraName(name))
    return true;
  return std::binary_search(info.modulesToSave.begin(),
                            info.modulesToSave.end(), moduleOf(name));
}
} // namespace

absl::StatusOr<PeftPlanInfo> peftPlanInfo(const std::string &configJson,
                                          std::vector<ModelParam> params,
                                          int labelsRank) {
  nlohmann::json cfg = nlohmann::json::parse(configJson, nullptr, false);
  if (cfg.is_discarded() || !cfg.value("use_lora", false))
    return absl::FailedPreconditionError(
        "a PEFT adapter folder holds LoRA factors: this plan was not compiled "
        "with use_lora: true");
  PeftPlanInfo info;
  info.r = cfg.value("lora_dim", int64_t(0));
  info.alpha = cfg.value("lora_alpha", 0.0);
  info.dropout = cfg.value("lora_dropout", 0.0);
  info.fanInFanOut = cfg.value("fan_in_fan_out", false);
  if (info.r <= 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "the plan's config has lora_dim ", info.r, "; it must be positive"));
  const std::string task = cfg.contains("task") && cfg["task"].is_string()
                               ? cfg["task"].get<std::string>()
                               : "";
  if (task == "classification" || (task.empty() && labelsRank == 1))
    info.taskType = "SEQ_CLS";
  else if (task == "causal_lm")
    info.taskType = "CAUSAL_LM";
  else if (task == "seq2seq")
    info.taskType = "SEQ_2_SEQ_LM";
  for (const char *key : {"_name_or_path", "name_or_path"})
    if (cfg.contains(key) && cfg[key].is_string())
      info.baseModel = cfg[key].get<std::string>();
  std::sort(
      params.begin(), params.end(),
      [](const ModelParam &a, const ModelParam &b) { return a.name < b.name; });
  info.params = std::move(params);
  std::set<std::string> toSave;
  for (const ModelParam &p : info.params) {
    if (endsWith(p.name, kA)) {
      std::string m = p.name.substr(0, p.name.size() - kA.size());
      if (!findParam(info, m + kB))
        return absl::FailedPreconditionError(
            absl::StrCat("the plan has ", p.name, " but no ", m, kB));
      info.loraModules.push_back(m);
    } else if (p.trainable && !isLoraName(p.name)) {
      toSave.insert(moduleOf(p.name));
    }
  }
  if (info.loraModules.empty())
    return absl::FailedPreconditionError(
        "the plan has use_lora but no lora_A/lora_B parameters");
  info.modulesToSave.assign(toSave.begin(), toSave.end());
  return info;
}

std::vector<std::string> peftTargetModules(const PeftPlanInfo &info) {
  const std::set<std::string> lora(info.loraModules.begin(),
                                   info.loraModules.end());
  std::vector<std::string> others;
  for (const std::string &m : allModules(info))
    if (!lora.count(m))
      others.push_back(m);
  std::set<std::string> out;
  for (const std::string &m : info.loraModules) {
    std::string pick = m;
    // Suffixes from the last component outwards.
    for (size_t dot = m.rfind('.'); dot != std::string::npos;
         dot = dot == 0 ? std::string::npos : m.rfind('.', dot - 1)) {
      std::string suffix = m.substr(dot + 1);
      if (std::none_of(others.begin(), others.end(), [&](const std::string &o) {
            return matchesEntry(o, suffix);
          })) {
        pick = suffix;
        break;
      }
    }
    out.insert(pick);
  }
  return {out.begin(), out.end()};
}

std::string peftAdapterConfig(const PeftPlanInfo &info) {
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = info.taskType.empty() ? nlohmann::json(nullptr)
                                         : nlohmann::json(info.taskType);
  j["base_model_name_or_path"] = info.baseModel.empty()
                                     ? nlohmann::json(nullptr)
                                     : nlohmann::json(info.baseModel);
  j["revision"] = nullptr;
  j["r"] = info.r;
  // An integral alpha as an integer, as PEFT writes it.
  if (info.alpha == std::floor(info.alpha) && std::abs(info.alpha) < 1e15)
    j["lora_alpha"] = int64_t(info.alpha);
  else
    j["lora_alpha"] = info.alpha;
  j["lora_dropout"] = info.dropout;
  j["target_modules"] = peftTargetModules(info);
  j["bias"] = "none";
  j["fan_in_fan_out"] = info.fanInFanOut;
  j["modules_to_save"] = info.modulesToSave.empty()
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(info.modulesToSave);
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["use_rslora"] = false;
  j["use_dora"] = false;
  j["layers_to_transform"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["rank_pattern"] = nlohmann::json::object();
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  return j.dump(2) + "\n";
}

absl::Status writePeftAdapter(const std::string &savedPath,
                              const PeftPlanInfo &info,
                              const std::string &dir) {
  auto saved = io::readSafetensors(savedPath);
  if (!saved.ok())
    return saved.status();
  std::vector<io::TensorToWrite> tensors;
  for (const ModelParam &p : info.params) {
    if (!inAdapter(info, p.name))
      continue;
    const io::TensorEntry *t = saved->find(p.name);
    if (!t)
      return absl::InternalError(
          absl::StrCat(savedPath, " lacks the plan's parameter ", p.name));
    tensors.push_back(
        {absl::StrCat(kPeftPrefix, p.name), t->dtype, t->shape, t->data});
  }
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the adapter folder ", dir, ": ", ec.message()));
  // Weights first: a folder whose config is new has its weights too.
  if (absl::Status s = io::writeSafetensors(
          (fs::path(dir) / kAdapterWeightsFile).string(), tensors,
          {{"format", "pt"}, {"producer", "galaxy-run --save-adapter"}});
      !s.ok())
    return s;
  return io::writeTextAtomically((fs::path(dir) / kAdapterConfigFile).string(),
                                 peftAdapterConfig(info));
}

namespace {

absl::Status bad(const std::string &dir, const std::string &msg) {
  return absl::InvalidArgumentError(
      absl::StrCat("--init-adapter ", dir, ": ", msg));
}

// The modules of the model that PEFT could put LoRA on: those with a 2-D
// weight.
std::vector<std::string> linearModules(const PeftPlanInfo &info) {
  std::vector<std::string> out;
  for (const ModelParam &p : info.params)
    if (!isLoraName(p.name) && endsWith(p.name, ".weight") &&
        p.shape.size() == 2)
      out.push_back(moduleOf(p.name));
  return out;
}

// Checks adapter_config.json's target_modules against the plan's LoRA
// modules. "all-linear" (PEFT's shorthand) is left to the tensor checks.
absl::Status checkTargets(const std::string &dir, const nlohmann::json &cfg,
                          const PeftPlanInfo &info) {
  if (!cfg.contains("target_modules") || cfg["target_modules"].is_null())
    return absl::OkStatus(); // PEFT's per-model default: the tensors tell
  const nlohmann::json &t = cfg["target_modules"];
  std::function<bool(const std::string &)> match;
  std::string shown;
  if (t.is_string()) {
    const std::string pattern = t.get<std::string>();
    if (pattern == "all-linear")
      return absl::OkStatus();
    std::shared_ptr<std::regex> re;
    try {
      re = std::make_shared<std::regex>(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error &) {
      return bad(dir, absl::StrCat("target_modules '", pattern,
                                   "' is not a regular expression galaxy-run "
                                   "reads; give target_modules as a list of "
                                   "module names"));
    }
    match = [re](const std::string &m) { return std::regex_match(m, *re); };
    shown = "'" + pattern + "'";
  } else if (t.is_array()) {
    std::vector<std::string> entries;
    for (const auto &e : t)
      if (e.is_string())
        entries.push_back(e.get<std::string>());
    match = [entries](const std::string &m) {
      return std::any_of(
          entries.begin(), entries.end(),
          [&](const std::string &e) { return matchesEntry(m, e); });
    };
    shown = "[" + absl::StrJoin(entries, ", ") + "]";
  } else {
    return bad(dir, "target_modules is neither a list nor a string");
  }
  const std::set<std::string> lora(info.loraModules.begin(),
                                   info.loraModules.end());
  std::vector<std::string> extra, missing;
  for (const std::string &m : linearModules(info))
    if (match(m) && !lora.count(m))
      extra.push_back(m);
  for (const std::string &m : info.loraModules)
    if (!match(m))
      missing.push_back(m);
  const std::string fix = absl::StrCat(
      "; compile the plan with lora_target_modules selecting what the "
      "adapter's target_modules ",
      shown, " select (the plan's LoRA modules are PEFT's [",
      absl::StrJoin(peftTargetModules(info), ", "), "])");
  if (!extra.empty())
    return bad(dir, absl::StrCat("target_modules ", shown,
                                 " put LoRA on modules the plan has none on: ",
                                 listed(extra), fix));
  if (!missing.empty())
    return bad(dir, absl::StrCat("target_modules ", shown,
                                 " leave out modules the plan has LoRA on: ",
                                 listed(missing), fix));
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<PeftAdapter> readPeftAdapter(const std::string &dir,
                                            const PeftPlanInfo &info) {
  const fs::path configPath = fs::path(dir) / kAdapterConfigFile;
  const fs::path weightsPath = fs::path(dir) / kAdapterWeightsFile;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::NotFoundError(absl::StrCat(
        "--init-adapter ", dir,
        " is not a folder; give the folder PeftModel.save_pretrained (or "
        "galaxy-run --save-adapter) wrote"));
  std::ifstream in(configPath);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("--init-adapter ", dir, ": no ", kAdapterConfigFile,
                     "; a PEFT adapter folder holds ", kAdapterConfigFile,
                     " and ", kAdapterWeightsFile));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json cfg = nlohmann::json::parse(text.str(), nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object())
    return bad(dir, absl::StrCat(kAdapterConfigFile, " is not a JSON object"));
  if (!fs::exists(weightsPath, ec)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin", ec))
      return bad(dir, absl::StrCat(
                          "holds adapter_model.bin (pickled), which galaxy-run "
                          "does not read; save it again with PEFT's "
                          "save_pretrained(..., safe_serialization=True) "
                          "to get ",
                          kAdapterWeightsFile));
    return absl::NotFoundError(
        absl::StrCat("--init-adapter ", dir, ": no ", kAdapterWeightsFile));
  }

  auto str = [&](const char *key) {
    return cfg.contains(key) && cfg[key].is_string()
               ? cfg[key].get<std::string>()
               : std::string();
  };
  auto truthy = [&](const char *key) {
    return cfg.contains(key) && cfg[key].is_boolean() && cfg[key].get<bool>();
  };
  auto nonEmpty = [&](const char *key) {
    return cfg.contains(key) && !cfg[key].is_null() && !cfg[key].empty();
  };
  if (str("peft_type") != "LORA")
    return bad(dir, absl::StrCat("peft_type is '", str("peft_type"),
                                 "'; galaxy-run reads LORA adapters only"));
  if (!cfg.contains("r") || !cfg["r"].is_number_integer() ||
      cfg["r"].get<int64_t>() != info.r)
    return bad(dir,
               absl::StrCat("r is ", cfg.value("r", nlohmann::json()).dump(),
                            " but the plan's lora_dim is ", info.r,
                            "; compile the plan with lora_dim ",
                            cfg.value("r", nlohmann::json()).dump()));
  const double alpha =
      cfg.contains("lora_alpha") && cfg["lora_alpha"].is_number()
          ? cfg["lora_alpha"].get<double>()
          : NAN;
  if (!(alpha == info.alpha))
    return bad(dir,
               absl::StrCat("lora_alpha is ",
                            cfg.value("lora_alpha", nlohmann::json()).dump(),
                            " but the plan's is ", info.alpha,
                            " (the LoRA scale is lora_alpha / r); compile "
                            "the plan with lora_alpha ",
                            cfg.value("lora_alpha", nlohmann::json()).dump()));
  if (truthy("use_rslora"))
    return bad(dir, "use_rslora scales by lora_alpha / sqrt(r); galaxy-run's "
                    "LoRA scales by lora_alpha / r");
  if (truthy("use_dora"))
    return bad(dir, "use_dora (weight-decomposed LoRA) is not galaxy-run's "
                    "LoRA");
  for (const char *key : {"rank_pattern", "alpha_pattern"})
    if (nonEmpty(key))
      return bad(dir, absl::StrCat(key, " gives some modules another ",
                                   key[0] == 'r' ? "r" : "lora_alpha",
                                   "; galaxy-run's LoRA has one for all"));
  if (nonEmpty("layer_replication"))
    return bad(dir, "layer_replication is not supported");
  if (const std::string b = str("bias"); !b.empty() && b != "none")
    return bad(dir, absl::StrCat("bias is '", b,
                                 "': the adapter trained biases too, and "
                                 "galaxy-run's LoRA trains none"));
  if (const std::string task = str("task_type");
      !task.empty() && !info.taskType.empty() && task != info.taskType)
    return bad(dir, absl::StrCat("task_type is ", task, " but the plan is ",
                                 info.taskType,
                                 "; compile the model for the adapter's task"));
  if (absl::Status s = checkTargets(dir, cfg, info); !s.ok())
    return s;

  PeftAdapter out;
  if (cfg.contains("fan_in_fan_out") && cfg["fan_in_fan_out"].is_boolean() &&
      cfg["fan_in_fan_out"].get<bool>() != info.fanInFanOut)
    out.warnings.push_back(absl::StrCat(
        "the adapter has fan_in_fan_out ", cfg["fan_in_fan_out"].dump(),
        ", the plan ", info.fanInFanOut ? "true" : "false",
        ": the LoRA factors are [r, in] and [out, r] either way; only the base "
        "weights in --init are laid out by the plan's"));
  if (cfg.contains("lora_dropout") && cfg["lora_dropout"].is_number() &&
      cfg["lora_dropout"].get<double>() != info.dropout)
    out.warnings.push_back(absl::StrCat(
        "the adapter was trained with lora_dropout ",
        cfg["lora_dropout"].dump(), "; the plan trains with ", info.dropout));

  auto file = io::readSafetensors(weightsPath.string());
  if (!file.ok())
    return file.status();
  out.weights = std::move(*file);
  const std::set<std::string> modules = allModules(info);
  // Whole modules PEFT trained (its modules_to_save: a LLaMA adapter's
  // embed_tokens / lm_head after added tokens) that the plan keeps frozen.
  std::vector<std::string> frozen;
  for (const io::TensorEntry &t : out.weights.tensors()) {
    if (t.name.rfind(kPrefix, 0) != 0)
      return bad(dir, absl::StrCat(kAdapterWeightsFile, " holds ", t.name,
                                   ", not a PEFT name (", kPeftPrefix,
                                   "<parameter>)"));
    const std::string name = t.name.substr(kPrefix.size());
    const ModelParam *p = findParam(info, name);
    if (!p) {
      if (!isLoraName(name))
        return bad(dir, absl::StrCat(kAdapterWeightsFile, " holds ", t.name,
                                     " but the plan has no parameter ", name,
                                     "; is the adapter for another model?"));
      const std::string m = name.substr(0, name.find(".lora_"));
      if (!modules.count(m))
        return bad(dir, absl::StrCat(kAdapterWeightsFile, " holds ", t.name,
                                     " but the plan has no module ", m,
                                     "; is the adapter for another model?"));
      if (!endsWith(name, kA) && !endsWith(name, kB))
        return bad(dir, absl::StrCat(kAdapterWeightsFile, " holds ", t.name,
                                     ", which is not a LoRA factor of a "
                                     "linear (lora_A.weight / lora_B.weight)"));
      return bad(dir, absl::StrCat(
                          kAdapterWeightsFile, " holds ", t.name,
                          " but the plan has no LoRA on ", m,
                          "; compile the plan with lora_target_modules that "
                          "cover it (the plan's LoRA modules are PEFT's [",
                          absl::StrJoin(peftTargetModules(info), ", "), "])"));
    }
    if (t.shape != p->shape)
      return bad(dir, absl::StrCat(
                          kAdapterWeightsFile, " holds ", t.name, " of shape ",
                          shapeStr(t.shape), " but the plan's ", name, " is ",
                          shapeStr(p->shape),
                          isLoraName(name)
                              ? " (lora_A [r, in], lora_B [out, r]); compile "
                                "the plan for the adapter's model and r"
                              : "; compile the plan for the adapter's model"));
    if (!isLoraName(name) && !p->trainable)
      frozen.push_back(name);
  }
  if (!frozen.empty())
    out.warnings.push_back(absl::StrCat(
        "the adapter holds ", listed(frozen),
        ", which it trained (modules_to_save) and the plan keeps frozen: they "
        "are loaded but not trained, and --save-adapter does not write them"));
  for (const std::string &m : info.loraModules)
    for (const std::string &f : {kA, kB}) {
      const std::string key = absl::StrCat(kPeftPrefix, m, f);
      if (!out.weights.find(key))
        return bad(dir, absl::StrCat(
                            kAdapterWeightsFile, " has no ", key,
                            ": the plan puts LoRA on ", m,
                            " but the adapter does not; compile the plan with "
                            "the adapter's target_modules"));
    }
  return out;
}

} // namespace galaxy::rt
