#include "compiler/config/validate.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/split.h"
#include "models/registry.h"

namespace galaxy::config {
namespace {

#define GALAXY_CONFIG_TRY(expr)                                                \
  do {                                                                         \
    absl::Status status_ = (expr);                                             \
    if (!status_.ok())                                                         \
      return status_;                                                          \
  } while (0)

absl::Status bad(const GalaxyConfig &c, const std::string &msg) {
  return absl::InvalidArgumentError(
      c.source.empty() ? msg : absl::StrCat(c.source, ": ", msg));
}

std::string listText(const std::vector<int64_t> &v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

std::string quoted(const std::string &s) { return absl::StrCat("\"", s, "\""); }

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

// One per-rank split list and what it splits.
struct Split {
  const char *list;
  std::vector<int64_t> *values;
  const char *totalKey;
  int64_t total;
  const char *unit; // singular: "head"
};

std::vector<Split> splitsFor(GalaxyConfig &c, ParallelMode mode) {
  Split heads{"tp_num_attention_heads_list", &c.tp_num_attention_heads_list,
              "num_attention_heads", c.num_attention_heads, "head"};
  Split inter{"tp_intermediate_size_list", &c.tp_intermediate_size_list,
              "intermediate_size", c.intermediate_size, "column"};
  Split seq{"seq_scatter_list", &c.seq_scatter_list, "pad_size", c.pad_size,
            "position"};
  // Stages cut the model's layer sequence (BART: encoder then decoder).
  const models::ModelSpec *model = models::findModel(c.model_type);
  Split stages{"stage_num_hidden_layers_list", &c.stage_num_hidden_layers_list,
               model ? model->layerCountKey.c_str() : "num_hidden_layers",
               model ? models::layerCount(*model, c) : c.num_hidden_layers,
               "layer"};
  Split batch{"dp_batch_list", &c.dp_batch_list, "batch_size", c.batch_size,
              "sample"};
  switch (mode) {
  case ParallelMode::kSerial:
    return {};
  case ParallelMode::kDP:
    return {batch};
  case ParallelMode::kTP:
    return {heads, inter};
  case ParallelMode::kSP:
    return {seq};
  case ParallelMode::kPP: {
    // A stage group's splits, but not dp's: a pipeline splits each
    // microbatch's rows evenly over the group (its size is only known per
    // microbatch).
    std::vector<Split> out;
    if (c.pp_group_mode != ParallelMode::kDP)
      out = splitsFor(c, c.pp_group_mode);
    out.insert(out.begin(), stages);
    return out;
  }
  case ParallelMode::kGalaxy: {
    RegionMethods m = regionMethods(c);
    std::vector<Split> out;
    if (m.att == BlockMethod::kTP)
      out.push_back(heads);
    if (m.mlp == BlockMethod::kTP)
      out.push_back(inter);
    if (m.att == BlockMethod::kSP || m.con == BlockMethod::kSP ||
        m.mlp == BlockMethod::kSP)
      out.push_back(seq);
    return out;
  }
  }
  return {};
}

// Fills an absent list with an even split, then checks it: `parts` entries
// (`partsWhat` says why that many), each >= 1, summing to the total. `part` is
// "rank" or "microbatch".
absl::Status resolveSplit(const GalaxyConfig &c, const Split &s, int64_t parts,
                          const std::string &part,
                          const std::string &partsWhat) {
  const std::string work = part == "rank" ? " (ranks must get work)" : "";
  const std::string partsName = part == "rank"    ? "ranks"
                                : part == "stage" ? "stages"
                                                  : "microbatches";
  std::vector<int64_t> &v = *s.values;
  if (v.empty()) {
    if (s.total < parts)
      return bad(c, absl::StrCat(s.totalKey, " = ", s.total,
                                 " cannot be split over ", parts, " ",
                                 partsName, " (", s.list, "): every ", part,
                                 " needs at least one ", s.unit, work,
                                 "; use at most ", s.total, " ", partsName));
    v = evenSplit(s.total, parts);
    return absl::OkStatus();
  }
  if (static_cast<int64_t>(v.size()) != parts)
    return bad(c, absl::StrCat(s.list, " = ", listText(v), " has ", v.size(),
                               " entries but ", partsWhat));
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] <= 0)
      return bad(c,
                 absl::StrCat(s.list, " = ", listText(v), " gives ", part, " ",
                              i, " ", v[i], " ", s.unit, "s; every ", part,
                              " must get at least one ", s.unit, work));
  int64_t sum = 0;
  for (int64_t x : v)
    sum += x;
  if (sum != s.total)
    return bad(c, absl::StrCat(s.list, " = ", listText(v), " sums to ", sum,
                               " but ", s.totalKey, " is ", s.total));
  return absl::OkStatus();
}

} // namespace

RegionMethods regionMethods(const GalaxyConfig &c) {
  // A hybrid pipeline's stages run the group mode.
  switch (c.parallel_mode == ParallelMode::kPP ? c.pp_group_mode
                                               : c.parallel_mode) {
  case ParallelMode::kTP:
    return {BlockMethod::kTP, BlockMethod::kNone, BlockMethod::kTP};
  case ParallelMode::kSP:
    return {BlockMethod::kSP, BlockMethod::kSP, BlockMethod::kSP};
  case ParallelMode::kGalaxy:
    return {c.att_parallel_method, c.con_parallel_method,
            c.mlp_parallel_method};
  default:
    return {BlockMethod::kNone, BlockMethod::kNone, BlockMethod::kNone};
  }
}

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

// Pipeline world: stages (p, stage_num_hidden_layers_list) x group size (G,
// the group mode's split lists; 1 for a plain pipeline). Any two of world, p
// and G fix the third. Resolves the stage list and the group's lists.
absl::Status resolvePipelineWorld(GalaxyConfig &c, const ParallelChoice &choice,
                                  const std::vector<Split> &splits,
                                  const std::string &file) {
  const Split &stages = splits.front();
  int64_t p = c.stage_num_hidden_layers_list.size(), g = 0;
  std::string gFrom;
  for (size_t i = 1; i < splits.size() && !g; ++i)
    if (!splits[i].values->empty()) {
      g = splits[i].values->size();
      gFrom = splits[i].list;
    }
  const bool plain = c.pp_group_mode == ParallelMode::kSerial;
  if (plain)
    g = 1;
  int64_t world = choice.world > 0   ? choice.world
                  : c.world_size > 0 ? c.world_size
                                     : 0;
  if (choice.world > 0 && c.world_size > 0 && c.world_size != choice.world)
    c.warnings.push_back(absl::StrCat(
        "world_size = ", c.world_size, " in ", file,
        " is overridden by the command line (", choice.world, ")"));
  const std::string mode = modeString(c.parallel_mode, c.pp_group_mode);
  if (!world) {
    if (!p)
      return bad(
          c,
          absl::StrCat("parallel_mode \"", mode,
                       "\" needs the stages: give stage_num_hidden_layers_list "
                       "(layers per stage), or a world size (--world N or "
                       "world_size)",
                       plain ? "" : " and the group's split list"));
    if (!g)
      return bad(c, absl::StrCat(
                        "parallel_mode \"", mode,
                        "\" needs the group size of each stage: pass --world N "
                        "(stages x group size), set world_size, or give the ",
                        toString(c.pp_group_mode), " split lists"));
    world = p * g;
  }
  if (!p && g) {
    if (world % g)
      return bad(c, absl::StrCat("world size ", world,
                                 " is not a multiple of the group size ", g,
                                 " (from ", gFrom, ")"));
    p = world / g;
  }
  if (p && !g) {
    if (world % p)
      return bad(c, absl::StrCat("world size ", world,
                                 " is not a multiple of the ", p,
                                 " stages of stage_num_hidden_layers_list"));
    g = world / p;
  }
  if (!p)
    return bad(c,
               absl::StrCat("parallel_mode \"", mode, "\" with world ", world,
                            " needs stage_num_hidden_layers_list or the ",
                            toString(c.pp_group_mode),
                            " split lists to tell stages from group ranks"));
  if (p * g != world)
    return bad(c,
               absl::StrCat(
                   "world size ", world,
                   " must be stages x group size, but "
                   "stage_num_hidden_layers_list gives ",
                   p, " stages and ",
                   plain ? std::string("a plain pipeline has 1 rank per stage")
                         : absl::StrCat("the group has ", g, " ranks"),
                   "; use --world ", p * g));
  if (p < 2)
    c.warnings.push_back(absl::StrCat("a pipeline of one stage (", mode,
                                      ") runs like its group mode alone"));
  GALAXY_CONFIG_TRY(resolveSplit(
      c, stages, p, "stage",
      absl::StrCat("the pipeline has ", p, " stages (world ", world, " = ", p,
                   " stages x ", g, " ranks per stage)")));
  for (size_t i = 1; i < splits.size(); ++i)
    GALAXY_CONFIG_TRY(resolveSplit(c, splits[i], g, "rank",
                                   absl::StrCat("each stage is a group of ", g,
                                                " ranks (world ", world, " = ",
                                                p, " stages x ", g, ")")));
  c.world_size = static_cast<int>(world);
  c.pp_group_size = static_cast<int>(g);
  return absl::OkStatus();
}

absl::StatusOr<GalaxyConfig> resolveConfig(const GalaxyConfig &in,
                                           const ParallelChoice &choice) {
  GalaxyConfig c = in;
  const std::string file = c.source.empty() ? "the config" : c.source;
  GALAXY_CONFIG_TRY(checkModel(c));
  GALAXY_CONFIG_TRY(checkTraining(c));
  absl::StatusOr<PeftMethod> peft = peftMethod(c);
  if (!peft.ok())
    return peft.status();
  GALAXY_CONFIG_TRY(checkPeftValues(c, *peft));
  c.full_model = *peft == PeftMethod::kFull;
  GALAXY_CONFIG_TRY(checkMethods(c));

  // Prototype configs carry no parallel_mode (the script chose it), so only a
  // file that names a parallel mode is worth a warning when overridden.
  if (choice.mode && *choice.mode != c.parallel_mode &&
      c.parallel_mode != ParallelMode::kSerial)
    c.warnings.push_back(absl::StrCat(
        "parallel_mode ", quoted(toString(c.parallel_mode)), " in ", file,
        " is overridden by the command line (", toString(*choice.mode), ")"));
  if (choice.mode) {
    c.parallel_mode = *choice.mode;
    c.pp_group_mode = choice.groupMode;
  }
  if (c.parallel_mode != ParallelMode::kPP)
    c.pp_group_mode = ParallelMode::kSerial;
  if (choice.world < 0)
    return bad(c, absl::StrCat("the command line asks for world size ",
                               choice.world, "; it must be positive"));
  if (c.world_size < 0)
    return bad(c, absl::StrCat("world_size = ", c.world_size,
                               " must be positive (or leave it out to infer "
                               "it from the split lists)"));

  std::vector<Split> splits = splitsFor(c, c.parallel_mode);
  // Clear lists this mode does not read, so the resolved config says exactly
  // what the compiler uses.
  auto used = [&](const std::vector<int64_t> *list) {
    for (const Split &s : splits)
      if (s.values == list)
        return true;
    return false;
  };
  for (auto [name, list] :
       {std::pair{"tp_num_attention_heads_list",
                  &c.tp_num_attention_heads_list},
        std::pair{"tp_intermediate_size_list", &c.tp_intermediate_size_list},
        std::pair{"seq_scatter_list", &c.seq_scatter_list},
        std::pair{"stage_num_hidden_layers_list",
                  &c.stage_num_hidden_layers_list},
        std::pair{"dp_batch_list", &c.dp_batch_list}})
    if (!used(list) && !list->empty()) {
      c.warnings.push_back(absl::StrCat(name, " in ", file, " is not used in ",
                                        toString(c.parallel_mode),
                                        " mode; ignored"));
      list->clear();
    }

  // The world size: command line, then world_size, then the first list given.
  int world = 0;
  std::string worldFrom;
  if (c.parallel_mode == ParallelMode::kPP) {
    GALAXY_CONFIG_TRY(resolvePipelineWorld(c, choice, splits, file));
    world = c.world_size;
  } else if (c.parallel_mode == ParallelMode::kSerial) {
    if (choice.world > 1)
      return bad(c, absl::StrCat("parallel_mode is \"serial\" (one rank) but "
                                 "the command line asks for world size ",
                                 choice.world,
                                 "; choose a parallel mode or world size 1"));
    if (c.world_size > 1)
      c.warnings.push_back(absl::StrCat("world_size = ", c.world_size, " in ",
                                        file,
                                        " ignored: serial mode runs one rank"));
    world = 1;
  } else if (choice.world > 0) {
    world = choice.world;
    worldFrom = "the command line";
    if (c.world_size > 0 && c.world_size != world)
      c.warnings.push_back(
          absl::StrCat("world_size = ", c.world_size, " in ", file,
                       " is overridden by the command line (", world, ")"));
  } else if (c.world_size > 0) {
    world = c.world_size;
    worldFrom = "world_size";
  } else {
    for (const Split &s : splits)
      if (!s.values->empty()) {
        world = static_cast<int>(s.values->size());
        worldFrom = s.list;
        break;
      }
    if (world == 0) {
      std::vector<std::string> lists;
      for (const Split &s : splits)
        lists.push_back(s.list);
      return bad(
          c, absl::StrCat("parallel_mode ", quoted(toString(c.parallel_mode)),
                          " needs a world size: pass --world N, set world_size",
                          lists.empty() ? "" : ", or give ",
                          absl::StrJoin(lists, " or ")));
    }
  }
  c.world_size = world;

  for (const Split &s : splits)
    if (c.parallel_mode != ParallelMode::kPP)
      GALAXY_CONFIG_TRY(resolveSplit(
          c, s, world, "rank",
          absl::StrCat("world size is ", world,
                       " (one entry per rank); the world size comes from ",
                       worldFrom)));

  if (c.parallel_mode == ParallelMode::kPP) {
    Split micro{"pp_microbatch_list", &c.pp_microbatch_list, "batch_size",
                c.batch_size, "sample"};
    GALAXY_CONFIG_TRY(
        resolveSplit(c, micro, c.num_microbatches, "microbatch",
                     absl::StrCat("num_microbatches is ", c.num_microbatches,
                                  " (one entry per microbatch)")));
    const size_t stages = c.stage_num_hidden_layers_list.size();
    if (c.pp_microbatch_list.size() < stages)
      c.warnings.push_back(absl::StrCat(
          c.pp_microbatch_list.size(), " microbatch",
          c.pp_microbatch_list.size() == 1 ? "" : "es", " for ", stages,
          " pipeline stages: at most ", c.pp_microbatch_list.size(),
          " stage(s) work at a time; set num_microbatches to ", stages,
          " or more to keep every stage busy"));
    if (c.pp_group_mode == ParallelMode::kDP)
      for (int64_t rows : c.pp_microbatch_list)
        if (rows < c.pp_group_size)
          return bad(
              c, absl::StrCat(
                     "pp_microbatch_list = ", listText(c.pp_microbatch_list),
                     " has a microbatch of ", rows,
                     " rows, but pp+dp splits every microbatch over its ",
                     c.pp_group_size,
                     " group ranks; make each microbatch at least that "
                     "big (fewer microbatches or a larger batch_size)"));
  } else if (!c.pp_microbatch_list.empty()) {
    c.warnings.push_back(
        absl::StrCat("pp_microbatch_list in ", file, " is not used in ",
                     toString(c.parallel_mode), " mode; ignored"));
    c.pp_microbatch_list.clear();
  }
  return c;
}

absl::Status validate(const GalaxyConfig &c, const ParallelChoice &choice) {
  return resolveConfig(c, choice).status();
}

absl::Status validate(const GalaxyConfig &c, ParallelMode mode, int world) {
  ParallelChoice choice;
  choice.mode = mode;
  choice.world = world;
  return validate(c, choice);
}

} // namespace galaxy::config
