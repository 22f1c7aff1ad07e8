#include "compiler/planner/probe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/validate.h"
#include "models/registry.h"
#include "runtime/plan/plan_sizes.h"

namespace galaxy::planner {

using config::BlockMethod;
using config::ParallelMode;

std::string Method::name() const {
  if (mode == ParallelMode::kSerial)
    return "serial";
  if (mode == ParallelMode::kDP)
    return "dp";
  if (att == BlockMethod::kTP && con == BlockMethod::kNone &&
      mlp == BlockMethod::kTP)
    return "tp";
  if (att == BlockMethod::kSP && con == BlockMethod::kSP &&
      mlp == BlockMethod::kSP)
    return "sp";
  return absl::StrCat("galaxy ", config::toString(att), "/",
                      config::toString(con), "/", config::toString(mlp));
}

void Method::applyTo(config::GalaxyConfig &c, bool asGroup) const {
  const std::string n = name();
  (asGroup ? c.pp_group_mode : c.parallel_mode) = n == "tp" ? ParallelMode::kTP
                                                  : n == "sp"
                                                      ? ParallelMode::kSP
                                                      : mode;
  if (n != "tp" && n != "sp" && mode == ParallelMode::kGalaxy) {
    c.att_parallel_method = att;
    c.con_parallel_method = con;
    c.mlp_parallel_method = mlp;
  }
}

std::vector<Method> methodsFor(int size) {
  if (size <= 1)
    return {Method{}};
  std::vector<Method> out{Method{ParallelMode::kDP}};
  for (BlockMethod att : {BlockMethod::kTP, BlockMethod::kSP})
    for (BlockMethod con : {BlockMethod::kSP, BlockMethod::kNone})
      for (BlockMethod mlp : {BlockMethod::kTP, BlockMethod::kSP})
        out.push_back(Method{ParallelMode::kGalaxy, att, con, mlp});
  return out;
}

int64_t MethodModel::maxRanks() const {
  int64_t n = std::numeric_limits<int64_t>::max();
  for (const ListInfo &l : lists)
    n = std::min(n, l.units());
  return method.mode == ParallelMode::kSerial ? 1 : n;
}

bool hasDecoderStack(const config::GalaxyConfig &c) {
  const models::ModelSpec *spec = models::findModel(c.model_type);
  return spec && spec->layerCountKey == "encoder_layers + decoder_layers";
}

namespace {

struct ProbeRun {
  std::vector<std::map<std::string, Work>> ranks;
  std::vector<double> memory; // PlanMemory.total per rank
};

// The block's driving list under `m` (see MethodModel::driver).
std::string driverOf(const Method &m, const std::string &block) {
  if (m.mode == ParallelMode::kDP)
    return "dp_batch_list";
  if (m.mode != ParallelMode::kGalaxy) // serial
    return "";
  auto listOf = [](BlockMethod b, const char *tpList) -> std::string {
    return b == BlockMethod::kTP   ? tpList
           : b == BlockMethod::kSP ? "seq_scatter_list"
                                   : "";
  };
  if (block == "layer.att")
    return listOf(m.att, "tp_num_attention_heads_list");
  if (block == "layer.con")
    return listOf(m.con, "");
  if (block == "layer.mlp")
    return listOf(m.mlp, "tp_intermediate_size_list");
  return "";
}

// The config of a probe: `layers` layers (and, with a decoder stack,
// `decoderLayers` decoder layers), the method over `world` ranks, every list
// split about 1/3 : 2/3 (in whole multiples).
absl::StatusOr<config::GalaxyConfig>
probeConfig(const config::GalaxyConfig &base, const Method &m, int64_t layers,
            int64_t decoderLayers, std::vector<ListInfo> *lists) {
  config::GalaxyConfig c = base;
  c.num_hidden_layers = layers;
  if (hasDecoderStack(base))
    c.decoder_layers = decoderLayers;
  c.tp_num_attention_heads_list.clear();
  c.tp_intermediate_size_list.clear();
  c.seq_scatter_list.clear();
  c.stage_num_hidden_layers_list.clear();
  c.dp_batch_list.clear();
  c.pp_microbatch_list.clear();
  c.num_microbatches = 1;
  c.pp_group_mode = ParallelMode::kSerial;
  c.world_size = 0;
  m.applyTo(c, false);
  const int world = m.mode == ParallelMode::kSerial ? 1 : 2;
  if (lists)
    lists->clear();
  for (config::Split &s : config::splitsFor(c, c.parallel_mode)) {
    // s.multiple covers a decoder's heads and FFN columns too (they follow
    // the encoder's lists in proportion; splitsFor): the planner only picks
    // splits that divide the decoder as well, as the config checks demand.
    ListInfo info{s.list, s.total, s.multiple};
    if (lists)
      lists->push_back(info);
    const int64_t u = info.units();
    if (u < 2)
      return absl::FailedPreconditionError(
          absl::StrCat(s.list, ": ", s.totalKey, " = ", s.total,
                       " cannot be split over 2 ranks"));
    const int64_t u0 = std::clamp<int64_t>(std::llround(u / 3.0), 1, u - 1);
    *s.values = {u0 * info.multiple, (u - u0) * info.multiple};
  }
  config::ParallelChoice choice;
  choice.mode = c.parallel_mode;
  choice.world = world;
  return config::resolveConfig(c, choice);
}

absl::StatusOr<ProbeRun> runProbe(const config::GalaxyConfig &cfg,
                                  bool forwardOnly) {
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, cfg, "partition");
  if (!module.ok())
    return module.status();
  const int world = std::max(cfg.world_size, 1);
  auto plans = lowerAllRanks(**module, cfg, world);
  if (!plans.ok())
    return plans.status();
  ProbeRun run;
  for (int r = 0; r < world; ++r) {
    run.ranks.push_back(walkRank(**module, r, forwardOnly));
    auto mem = plan::checkPlanSizes((*plans)[r], "probe");
    if (!mem.ok())
      return mem.status();
    run.memory.push_back(static_cast<double>(mem->total));
  }
  return run;
}

// a + b * share through two points; equal shares: all proportional.
Affine fitWork(double s0, const Work &y0, double s1, const Work &y1) {
  Affine f;
  if (std::abs(s1 - s0) < 1e-12) {
    f.b = y0.scaled(1 / s0);
    return f;
  }
  f.b = (y1 - y0).scaled(1 / (s1 - s0));
  f.a = y0 - f.b.scaled(s0);
  return f;
}

AffineBytes fitBytes(double s0, double y0, double s1, double y1) {
  if (std::abs(s1 - s0) < 1e-12)
    return {0, y0 / s0};
  const double b = (y1 - y0) / (s1 - s0);
  return {y0 - b * s0, b};
}

} // namespace

absl::StatusOr<MethodModel> probeMethod(const config::GalaxyConfig &base,
                                        const Method &m, bool forwardOnly) {
  MethodModel mm;
  mm.method = m;
  const bool decoder = hasDecoderStack(base);
  auto c1 = probeConfig(base, m, 1, 1, &mm.lists);
  if (!c1.ok())
    return c1.status();
  auto c2 = probeConfig(base, m, 2, 1, nullptr);
  if (!c2.ok())
    return c2.status();
  auto p1 = runProbe(*c1, forwardOnly);
  if (!p1.ok())
    return p1.status();
  auto p2 = runProbe(*c2, forwardOnly);
  if (!p2.ok())
    return p2.status();
  // A decoder stack: a third probe with one more decoder layer.
  absl::StatusOr<ProbeRun> p3 = ProbeRun{};
  if (decoder) {
    auto c3 = probeConfig(base, m, 1, 2, nullptr);
    if (!c3.ok())
      return c3.status();
    p3 = runProbe(*c3, forwardOnly);
    if (!p3.ok())
      return p3.status();
  }
  const int world = static_cast<int>(p1->ranks.size());
  // Each rank's share of each list, and their mean (memory's share).
  auto shareOf = [&](const config::GalaxyConfig &c, int rank,
                     const std::string &list) {
    config::GalaxyConfig copy = c;
    double sum = 0;
    int n = 0;
    for (const config::Split &s : config::splitsFor(copy, copy.parallel_mode))
      if (list.empty() || list == s.list) {
        sum += static_cast<double>((*s.values)[rank]) / s.total;
        ++n;
      }
    return n ? sum / n : 1.0;
  };
  // Per layer = 2 layers - 1 layer: a collective is inserted before its
  // consumer, so what one layer's output needs lands in the next layer (or,
  // after the last, in the head), and a 1-layer probe alone would count it
  // once per model (an SP LLaMA's all_reduce). What the first layer costs
  // beyond any other is a fixed block "first.<block>" (on the first stage).
  auto fitRun = [&](const ProbeRun &run, const std::string &b,
                    const std::string &driver) {
    if (world == 1)
      return Affine{Work{},
                    run.ranks[0].count(b) ? run.ranks[0].at(b) : Work{}};
    auto get = [&](int r) {
      return run.ranks[r].count(b) ? run.ranks[r].at(b) : Work{};
    };
    return fitWork(shareOf(*c1, 0, driver), get(0), shareOf(*c1, 1, driver),
                   get(1));
  };
  std::set<std::string> blocks;
  for (const ProbeRun *run : {&*p1, &*p2, &*p3})
    if (!run->ranks.empty())
      for (const auto &[name, w] : run->ranks[0])
        blocks.insert(name);
  for (const std::string &b : blocks) {
    const std::string driver = driverOf(m, b);
    mm.driver[b] = driver;
    const Affine one = fitRun(*p1, b, driver);
    if (b.rfind("layer.", 0) != 0) {
      mm.fixed[b] = one;
      continue;
    }
    // One probe's layer blocks = first + per layer (+ per decoder layer).
    const Affine two = fitRun(*p2, b, driver);
    Affine first = {one.a.scaled(2) - two.a, one.b.scaled(2) - two.b};
    mm.layer[b] = {two.a - one.a, two.b - one.b};
    if (decoder) {
      const Affine three = fitRun(*p3, b, driver);
      const Affine dec = {three.a - one.a, three.b - one.b};
      mm.decoderLayer[b] = dec;
      first = {first.a - dec.a, first.b - dec.b};
    }
    mm.fixed["first." + b] = first;
    mm.driver["first." + b] = driver;
  }
  // Memory: fixed + layers x per layer (+ decoder layers x per decoder
  // layer), all affine in the mean share.
  std::vector<double> share(world), perLayer(world), perDec(world, 0),
      fixedMem(world);
  for (int r = 0; r < world; ++r) {
    share[r] = shareOf(*c1, r, "");
    perLayer[r] = p2->memory[r] - p1->memory[r];
    if (decoder)
      perDec[r] = p3->memory[r] - p1->memory[r];
    fixedMem[r] = p1->memory[r] - perLayer[r] - perDec[r];
  }
  auto fit = [&](const std::vector<double> &y) {
    return world == 1 ? AffineBytes{0, y[0]}
                      : fitBytes(share[0], y[0], share[1], y[1]);
  };
  mm.memLayer = fit(perLayer);
  mm.memFixed = fit(fixedMem);
  if (decoder)
    mm.memDecoderLayer = fit(perDec);
  return mm;
}

} // namespace galaxy::planner
