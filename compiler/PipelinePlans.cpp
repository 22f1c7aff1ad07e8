#include "compiler/PipelinePlans.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "compiler/LowerToPlan.h"
#include "compiler/config/enum_names.h"
#include "galaxy/GalaxyDialect.h"
#include "galaxy/Layout.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/registry.h"
#include "runtime/plan/schedule.h"

namespace galaxy {
namespace {

std::string shapeText(mlir::Type t) {
  auto rt = mlir::cast<mlir::RankedTensorType>(t);
  return absl::StrCat("[", absl::StrJoin(rt.getShape(), "x"), "]");
}

std::string mib(int64_t bytes) {
  return absl::StrFormat("%.2f MiB", bytes / 1048576.0);
}

// How a stage holds its copy of tied parameter `name`: the parameter's and
// its gradient's layouts within the stage's group, and whether it trains.
struct TiedCopy {
  int stage = 0;
  bool trainable = false;
  Layout param, grad;
  std::string text() const {
    return absl::StrCat(trainable ? "trainable" : "frozen", ", laid out ",
                        param.str(), ", gradient ", grad.str());
  }
  // Copies are summed element by element across stages: the same slices,
  // and gradients alike, except that a replicated parameter's gradient may be
  // complete (R) on one stage and a partial sum over the group (P, all-reduced
  // by "update") on another; the runtime sums those over both groups.
  bool summableWith(const TiedCopy &o) const {
    return trainable == o.trainable && param == o.param &&
           (grad == o.grad ||
            (param.kind == Layout::R && grad.kind != Layout::S &&
             o.grad.kind != Layout::S));
  }
};

TiedCopy tiedCopy(mlir::ModuleOp module, llvm::StringRef name, int stage) {
  TiedCopy c;
  c.stage = stage;
  bool found = false;
  module.walk([&](ParamOp p) {
    if (p.getName() == name && !found) {
      found = true;
      c.param = layoutOf(p.getResult());
      c.trainable = p.getTrainable();
    }
  });
  module.walk([&](GradOfOp g) {
    if (auto p = g.getParam().getDefiningOp<ParamOp>();
        p && p.getName() == name)
      c.grad = layoutOf(g.getResult());
  });
  return c;
}

} // namespace

absl::StatusOr<PipelineCompile> compilePipeline(mlir::MLIRContext &ctx,
                                                const config::GalaxyConfig &cfg,
                                                const std::string &stopAfter,
                                                bool lower) {
  PipelineCompile out;
  const int stages = cfg.stage_num_hidden_layers_list.size();
  const int group = std::max(cfg.pp_group_size, 1);
  const int m = cfg.pp_microbatch_list.size();
  const std::string kind = config::toString(cfg.pp_schedule);
  std::vector<int64_t> sizes = microbatchSizes(cfg);
  if (lower)
    out.plans.resize(stages * group);
  int64_t firstLayer = 0;
  // Tied parameter -> its copies so far, in stage order.
  std::map<std::string, std::vector<TiedCopy>> tiedCopies;
  for (int s = 0; s < stages; ++s) {
    std::vector<mlir::OwningOpRef<mlir::ModuleOp>> mods;
    for (int64_t rows : sizes) {
      auto mod = compileToStage(ctx, cfg, stopAfter, StageChoice{s, rows});
      if (!mod.ok())
        return absl::Status(mod.status().code(),
                            absl::StrCat("stage ", s, " (microbatch of ", rows,
                                         " rows): ", mod.status().message()));
      mods.push_back(std::move(*mod));
      if (!lower)
        break;
    }
    // Tied copies: each must be summable with the first stage's.
    std::vector<std::pair<std::string, std::vector<int32_t>>> tied;
    if (auto d = mods[0]->getOperation()->getAttrOfType<mlir::DictionaryAttr>(
            kPipelineTiedAttr))
      for (mlir::NamedAttribute e : d) {
        auto on = mlir::cast<mlir::DenseI64ArrayAttr>(e.getValue());
        const std::string name = e.getName().str();
        tied.emplace_back(name, std::vector<int32_t>(on.asArrayRef().begin(),
                                                     on.asArrayRef().end()));
        std::vector<TiedCopy> &copies = tiedCopies[name];
        copies.push_back(tiedCopy(*mods[0], name, s));
        const TiedCopy &first = copies.front(), &mine = copies.back();
        if (!first.summableWith(mine))
          return absl::InvalidArgumentError(absl::StrCat(
              "parameter ", name, " is tied across stages ", first.stage,
              " and ", s,
              " (e.g. tie_word_embeddings), whose gradients are summed before "
              "each update, but stage ",
              first.stage, "'s copy is ", first.text(), " and stage ", s,
              "'s is ", mine.text(), " (pp_group_mode ",
              config::toString(cfg.pp_group_mode),
              "); untie it (tie_word_embeddings false) or choose a group "
              "mode that lays both copies out alike"));
      }
    if (lower) {
      plan::Pipeline info;
      info.set_stage(s);
      info.set_num_stages(stages);
      info.set_group_size(group);
      info.set_schedule(kind);
      for (int64_t n : cfg.pp_microbatch_list)
        info.add_microbatch_sizes(n);
      info.set_slots(plan::stashSlots(kind, s, stages, m));
      info.set_first_layer(firstLayer);
      info.set_end_layer(firstLayer + cfg.stage_num_hidden_layers_list[s]);
      info.set_group_mode(config::toString(cfg.pp_group_mode));
      for (const auto &[name, on] : tied) {
        plan::TiedParam *t = info.add_tied();
        t->set_name(name);
        for (int32_t x : on)
          t->add_stages(x);
      }
      auto fwd = mods[0]->lookupSymbol<mlir::func::FuncOp>("forward");
      for (unsigned i = 0; i < fwd.getNumArguments(); ++i)
        if (auto a = fwd.getArgAttrOfType<mlir::StringAttr>(i, kInputAttr);
            a && a.getValue().starts_with("pp.in."))
          info.add_in_names(a.str());
      for (unsigned i = 0; i < fwd.getNumResults(); ++i)
        if (auto a = fwd.getResultAttrOfType<mlir::StringAttr>(i, kOutputAttr);
            a && a.getValue().starts_with("pp.out."))
          info.add_out_names(a.str());
      std::vector<StageModule> sm;
      for (size_t i = 0; i < sizes.size(); ++i)
        sm.push_back({sizes[i], *mods[i]});
      for (int g = 0; g < group; ++g) {
        auto p = lowerPipelineStage(sm, cfg, {g, group}, info);
        if (!p.ok())
          return p.status();
        out.plans[s * group + g] = std::move(*p);
      }
    }
    firstLayer += cfg.stage_num_hidden_layers_list[s];
    out.stageModules.push_back(std::move(mods[0]));
  }
  // Every copy's gradient kind, now that all stages are compiled.
  for (plan::Plan &p : out.plans)
    for (plan::TiedParam &t : *p.mutable_pipeline()->mutable_tied())
      for (const TiedCopy &c : tiedCopies[t.name()])
        t.add_partial(c.grad.kind == Layout::P);
  return out;
}

namespace {
// Layers [first, end) of the model's layer sequence, named by its groups:
// "encoder layers [0, 2)", or for BART "encoder layers [2, 3) + decoder
// layers [0, 1)".
std::string layerRange(const config::GalaxyConfig &cfg, int64_t first,
                       int64_t end) {
  const models::ModelSpec *spec = models::findModel(cfg.model_type);
  if (!spec)
    return absl::StrFormat("layers [%d, %d)", first, end);
  std::vector<std::string> parts;
  int64_t start = 0;
  for (const models::LayerGroup &g : spec->layers(cfg)) {
    const int64_t lo = std::max(first, start),
                  hi = std::min(end, start + g.count);
    if (lo < hi)
      parts.push_back(absl::StrFormat("%s layers [%d, %d)", g.name, lo - start,
                                      hi - start));
    start += g.count;
  }
  return absl::StrJoin(parts, " + ");
}
} // namespace

std::string stageBanner(const config::GalaxyConfig &cfg, int stage,
                        mlir::ModuleOp module) {
  const int stages = cfg.stage_num_hidden_layers_list.size();
  const int group = std::max(cfg.pp_group_size, 1);
  int64_t first = 0;
  for (int s = 0; s < stage; ++s)
    first += cfg.stage_num_hidden_layers_list[s];
  const int64_t end = first + cfg.stage_num_hidden_layers_list[stage];
  // Embeddings run on the stage of their first layer (BART's decoder
  // embedding on the first decoder stage); a module not split yet shows
  // them on stage 0.
  const bool split = module->hasAttr("galaxy.pipeline");
  bool embeds = !split && stage == 0;
  if (split)
    module.walk([&](mlir::Operation *op) {
      if (auto k = op->getAttrOfType<mlir::StringAttr>(kBlockAttr))
        embeds = embeds || k.getValue() == "embedding";
    });
  std::string out = absl::StrFormat(
      "// ---- stage %d of %d: %s%s%s on world rank%s "
      "%d..%d (%s group of %d)\n",
      stage, stages, layerRange(cfg, first, end), embeds ? " + embeddings" : "",
      stage + 1 == stages ? " + pooler, head, loss" : "", group > 1 ? "s" : "",
      stage * group, stage * group + group - 1,
      config::toString(cfg.pp_group_mode), group);
  auto fwd = module.lookupSymbol<mlir::func::FuncOp>("forward");
  if (!fwd)
    return out;
  auto peer = [&](int s) {
    return group > 1 ? absl::StrFormat("stage %d (same group rank)", s)
                     : absl::StrFormat("stage %d (rank %d)", s, s);
  };
  for (unsigned i = 0; i < fwd.getNumArguments(); ++i)
    if (auto a = fwd.getArgAttrOfType<mlir::StringAttr>(i, kInputAttr);
        a && a.getValue().starts_with("pp.in."))
      out += absl::StrFormat(
          "//   recv %s %s from %s; send its gradient back as pp.dgrad.%s\n",
          a.str(), shapeText(fwd.getArgumentTypes()[i]), peer(stage - 1),
          a.getValue().substr(strlen("pp.in.")).str());
  for (unsigned i = 0; i < fwd.getNumResults(); ++i)
    if (auto a = fwd.getResultAttrOfType<mlir::StringAttr>(i, kOutputAttr);
        a && a.getValue().starts_with("pp.out."))
      out += absl::StrFormat(
          "//   send %s %s to %s; recv its gradient as pp.grad.%s\n", a.str(),
          shapeText(fwd.getResultTypes()[i]), peer(stage + 1),
          a.getValue().substr(strlen("pp.out.")).str());
  if (auto d = module->getAttrOfType<mlir::DictionaryAttr>(kPipelineTiedAttr))
    for (mlir::NamedAttribute e : d) {
      std::vector<std::string> others;
      for (int64_t t :
           mlir::cast<mlir::DenseI64ArrayAttr>(e.getValue()).asArrayRef())
        if (t != stage)
          others.push_back(peer(int(t)));
      out += absl::StrFormat("//   tied %s: a copy also on %s; gradients "
                             "summed before each update\n",
                             e.getName().str(), absl::StrJoin(others, ", "));
    }
  return out;
}

std::string pipelineReport(const config::GalaxyConfig &cfg,
                           const std::vector<plan::Plan> &plans) {
  const int stages = cfg.stage_num_hidden_layers_list.size();
  const int group = std::max(cfg.pp_group_size, 1);
  const int m = cfg.pp_microbatch_list.size();
  const std::string kind = config::toString(cfg.pp_schedule);
  plan::Timeline t = plan::simulate(kind, stages, m);
  std::string out = absl::StrFormat(
      "pipeline: %d stages x %d rank%s (%s), %d microbatches [%s], schedule "
      "%s\n",
      stages, group, group > 1 ? "s" : "",
      config::modeString(cfg.parallel_mode, cfg.pp_group_mode), m,
      absl::StrJoin(cfg.pp_microbatch_list, ","), kind);
  out += "timeline (F = forward, B = backward of a microbatch; B counted 2x F; "
         ".. = idle):\n";
  std::vector<std::string> labels;
  for (int s = 0; s < stages; ++s)
    labels.push_back(group > 1
                         ? absl::StrFormat("stage %d (ranks %d-%d)", s,
                                           s * group, s * group + group - 1)
                         : absl::StrFormat("stage %d (rank %d)", s, s));
  out += plan::renderTimeline(t, labels);
  out += absl::StrFormat(
      "bubble: %.1f%% of the step idle; idle/busy %.3f vs (p-1)/m = %.3f\n",
      100 * t.bubbleFraction, t.bubbleOverBusy, double(stages - 1) / m);
  out += "activation memory per stage (stash slots x slot + arena):\n";
  for (int s = 0; s < stages && size_t(s * group) < plans.size(); ++s) {
    const plan::Plan &p = plans[s * group];
    const int64_t slot = p.pipeline().stash_slot_bytes(),
                  arena = p.arena_bytes();
    const int gp = plan::stashSlots("gpipe", s, stages, m),
              ob = plan::stashSlots("1f1b", s, stages, m);
    out += absl::StrFormat(
        "  stage %d: slot %s, arena %s | gpipe %d x slot = %s | 1f1b %d x "
        "slot = %s\n",
        s, mib(slot), mib(arena), gp, mib(gp * slot + arena), ob,
        mib(ob * slot + arena));
  }
  return out;
}

} // namespace galaxy
