#include "compiler/planner/exact.h"

#include "absl/strings/str_cat.h"
#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/PipelinePlans.h"
#include "runtime/plan/plan_sizes.h"

namespace galaxy::planner {

absl::StatusOr<Compiled> compileExact(const SearchInput &in,
                                      const config::GalaxyConfig &cfg) {
  Compiled out;
  mlir::MLIRContext ctx;
  const int world = std::max(cfg.world_size, 1);
  if (cfg.parallel_mode == config::ParallelMode::kPP) {
    auto c = compilePipeline(ctx, cfg, "partition", true);
    if (!c.ok())
      return c.status();
    out.plans = std::move(c->plans);
    const int p = c->stageModules.size(), g = cfg.pp_group_size;
    const int m = cfg.pp_microbatch_list.size();
    // The stage modules are compiled for the first microbatch's rows: scaled
    // to the mean microbatch (collective counts stay).
    const double scale = static_cast<double>(cfg.batch_size) / m /
                         static_cast<double>(cfg.pp_microbatch_list[0]);
    std::vector<std::vector<Work>> work(p, std::vector<Work>(g)),
        opt(p, std::vector<Work>(g));
    for (int s = 0; s < p; ++s)
      for (int r = 0; r < g; ++r) {
        const Work w = total(walkRank(*c->stageModules[s], r, in.latency));
        Work mb = withoutOptimizer(w).scaled(scale);
        mb.reduceCount = w.reduceCount;
        mb.gatherCount = w.gatherCount;
        work[s][r] = mb;
        // The stage's update program: its gradients' all-reduces and the
        // optimizer, once per step.
        opt[s][r] = in.latency ? Work{}
                               : updateAlone(total(walkFunction(
                                     *c->stageModules[s], "update", r)));
      }
    // What each stage sends: its plan's "pp.out.*" outputs for the first
    // microbatch, scaled like the work; the gradient comes back when training.
    std::vector<double> p2p(p, 0);
    const std::string prog = absl::StrCat(
        in.latency ? "eval_step.b" : "train_fwd.b", cfg.pp_microbatch_list[0]);
    for (int s = 0; s < p; ++s)
      for (const plan::Program &pr : out.plans[s * g].programs())
        if (pr.name() == prog)
          for (const plan::Binding &b : pr.outputs())
            if (b.name().rfind("pp.out.", 0) == 0) {
              double n = 4 * scale * (in.latency ? 1 : 2);
              for (int64_t d : out.plans[s * g].buffers(b.buffer()).shape())
                n *= d;
              p2p[s] += n;
            }
    out.time = pipelineStep(in, m, work, opt, p2p, &out.ranks);
  } else {
    auto module = compileToStage(ctx, cfg, "partition");
    if (!module.ok())
      return module.status();
    auto plans = lowerAllRanks(**module, cfg, world);
    if (!plans.ok())
      return plans.status();
    out.plans = std::move(*plans);
    std::vector<int> all(world);
    for (int i = 0; i < world; ++i)
      all[i] = i;
    const GroupNet net = groupNet(in.devices, all);
    std::vector<Seconds> t(world);
    for (int r = 0; r < world; ++r) {
      t[r] = timeOf(total(walkRank(**module, r, in.latency)),
                    in.devices.devices(r), net);
      out.time = std::max(out.time, t[r].total());
    }
    out.ranks.resize(world);
    for (int r = 0; r < world; ++r)
      out.ranks[r] = {t[r].compute, t[r].comm, out.time - t[r].total(), 0};
  }
  for (size_t r = 0; r < out.plans.size() && r < out.ranks.size(); ++r) {
    auto mem = plan::checkPlanSizes(out.plans[r], "planned");
    if (!mem.ok())
      return mem.status();
    out.ranks[r].memory = static_cast<double>(mem->total);
  }
  return out;
}

} // namespace galaxy::planner
