#include "compiler/planner/planner.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/to_json.h"
#include "compiler/config/validate.h"
#include "compiler/planner/exact.h"
#include "compiler/planner/search.h"
#include "models/registry.h"

namespace galaxy::planner {
namespace {

std::string deviceName(const plan::Devices &d, int rank) {
  const std::string &n = d.devices(rank).name();
  return n.empty() ? absl::StrCat("devices[", rank, "]")
                   : absl::StrCat("devices[", rank, "] (\"", n, "\")");
}

std::string gib(double bytes) {
  return bytes >= kGiB || bytes <= -kGiB
             ? absl::StrFormat("%.3f GiB", bytes / kGiB)
             : absl::StrFormat("%.3f MiB", bytes / (1024.0 * 1024.0));
}

std::string ms(double s) { return absl::StrFormat("%.3f ms", s * 1e3); }

std::string lackText(const plan::Devices &d, const Candidate &c) {
  return absl::StrCat(deviceName(d, c.lackRank), " needs ", gib(c.needBytes),
                      " but its memory_gib is ",
                      gib(d.devices(c.lackRank).memory_gib() * kGiB),
                      " (lacks ", gib(c.lackBytes), ")");
}

// The resolved config of a candidate.
absl::StatusOr<config::GalaxyConfig> resolve(const Candidate &c) {
  config::ParallelChoice choice;
  choice.mode = c.cfg.parallel_mode;
  choice.groupMode = c.cfg.pp_group_mode;
  choice.world = c.cfg.world_size;
  return config::resolveConfig(c.cfg, choice);
}

std::string rankTable(const plan::Devices &d, const std::vector<RankTime> &r) {
  std::string out = absl::StrFormat("  %-4s %-16s %10s %12s %12s %12s  %s\n",
                                    "rank", "device", "gflops", "compute ms",
                                    "comm ms", "idle ms", "memory / limit");
  for (size_t i = 0; i < r.size(); ++i) {
    const plan::Device &dev = d.devices(i);
    absl::StrAppend(
        &out,
        absl::StrFormat("  %-4d %-16s %10.1f %12.3f %12.3f %12.3f  %s / %s\n",
                        i, dev.name().empty() ? "-" : dev.name(), dev.gflops(),
                        r[i].compute * 1e3, r[i].comm * 1e3, r[i].idle * 1e3,
                        gib(r[i].memory), gib(dev.memory_gib() * kGiB)));
  }
  return out;
}

} // namespace

absl::StatusOr<Result> planAuto(const config::GalaxyConfig &loaded,
                                const plan::Devices &devices,
                                const Options &opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const models::ModelSpec *spec = models::findModel(loaded.model_type);
  const bool decoderStack = hasDecoderStack(loaded);
  if (!spec || (spec->layerCountKey != "num_hidden_layers" && !decoderStack))
    return absl::InvalidArgumentError(absl::StrCat(
        "--auto plans models whose layers are num_hidden_layers (bert, "
        "llama) or encoder_layers + decoder_layers (bart); model_type \"",
        loaded.model_type,
        "\" needs its parallel keys written by hand for now"));
  const int world = devices.devices_size();
  SearchInput in{devices, loaded, opts.latency};
  std::string notes;
  // The pipeline search gives every stage layers of one cost; an encoder-
  // decoder's stages would cut encoder then decoder layers, which cost
  // differently (cross-attention), so only its SPMD methods are searched.
  const int64_t pipelineLayers = decoderStack ? 0 : loaded.num_hidden_layers;
  if (decoderStack && world > 1)
    absl::StrAppend(&notes, "  pipelines not searched: ", loaded.model_type,
                    "'s stages cut encoder_layers + decoder_layers, whose "
                    "layers cost differently (the decoder's cross-attention), "
                    "and the pipeline search splits layers of one cost; its "
                    "SPMD methods only\n");

  // Probes: one per group method any candidate needs.
  std::map<std::string, MethodModel> models;
  int probes = 0;
  auto modelOf = [&](const Method &m) -> const MethodModel * {
    const std::string key = m.name();
    if (auto it = models.find(key); it != models.end())
      return &it->second;
    auto mm = probeMethod(loaded, m, opts.latency);
    probes += 2;
    if (!mm.ok()) {
      absl::StrAppend(&notes, "  skipped ", key, ": ", mm.status().message(),
                      "\n");
      models.emplace(key, MethodModel{});
      models[key].lists.push_back({"", 0, 1}); // maxRanks() 0: unusable
      return nullptr;
    }
    return &models.emplace(key, std::move(*mm)).first->second;
  };
  // Every candidate, best first (fitting ones first).
  auto searchAll = [&]() {
    std::vector<Candidate> cands;
    for (const Method &m : methodsFor(world))
      if (const MethodModel *mm = modelOf(m)) {
        if (mm->maxRanks() < world) {
          if (in.memScale == 1.0)
            absl::StrAppend(&notes, "  skipped ", m.name(), " over ", world,
                            " ranks: its lists have ", mm->maxRanks(),
                            " units at most\n");
          continue;
        }
        cands.push_back(searchSpmd(in, *mm));
        if (world == 1)
          cands.back().label = "serial";
      }
    for (int p = 2; p <= world && p <= pipelineLayers; ++p) {
      if (world % p)
        continue;
      for (const Method &m : methodsFor(world / p))
        if (const MethodModel *mm = modelOf(m);
            mm && mm->maxRanks() >= world / p)
          for (Candidate &c : searchPipeline(in, *mm, p))
            cands.push_back(std::move(c));
    }
    std::stable_sort(
        cands.begin(), cands.end(), [](const Candidate &a, const Candidate &b) {
          if (a.fits != b.fits)
            return a.fits;
          return a.fits ? a.time < b.time : a.lackBytes < b.lackBytes;
        });
    return cands;
  };
  std::vector<Candidate> cands = searchAll();
  if (cands.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--auto found no parallel configuration for ", world,
                     " devices:\n", notes));
  if (!cands.front().fits)
    return absl::ResourceExhaustedError(
        absl::StrCat("no parallel configuration fits the devices' memory: ",
                     lackText(devices, cands.front()),
                     " under the closest candidate, ", cands.front().label));
  const double searchSec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();

  // Compile the best; a candidate whose real plans outgrow a device (or that
  // the compiler refuses) gives way to the next.
  Result res;
  size_t chosen = cands.size();
  Compiled exact;
  for (int attempt = 0; attempt < 4 && chosen == cands.size(); ++attempt) {
    if (attempt > 0) {
      cands = searchAll();
      if (cands.empty() || !cands.front().fits)
        break;
    }
    bool rescaled = false;
    for (size_t i = 0; i < cands.size() && i < 8 && cands[i].fits && !rescaled;
         ++i) {
      auto cfg = resolve(cands[i]);
      if (!cfg.ok()) {
        absl::StrAppend(&notes, "  ", cands[i].label, ": ",
                        cfg.status().message(), "\n");
        continue;
      }
      auto c = compileExact(in, *cfg);
      if (!c.ok()) {
        absl::StrAppend(&notes, "  ", cands[i].label,
                        ": does not compile: ", c.status().message(), "\n");
        continue;
      }
      for (size_t r = 0; r < c->ranks.size() && !rescaled; ++r) {
        const double cap = devices.devices(r).memory_gib() * kGiB;
        if (c->ranks[r].memory <= cap)
          continue;
        cands[i].fits = false;
        cands[i].lackRank = r;
        cands[i].needBytes = c->ranks[r].memory;
        cands[i].lackBytes = c->ranks[r].memory - cap;
        absl::StrAppend(&notes, "  ", cands[i].label, ": compiled, but ",
                        lackText(devices, cands[i]), "\n");
        // Estimates too low: scale memory by what this rank showed, search
        // again.
        const double est = std::max(cands[i].ranks[r].memory, 1.0);
        in.memScale *= std::max(1.02, c->ranks[r].memory / est);
        rescaled = true;
      }
      if (rescaled)
        break;
      chosen = i;
      res.chosen = *cfg;
      exact = std::move(*c);
      break;
    }
  }
  if (chosen == cands.size()) {
    for (const Candidate &c : cands)
      if (!c.fits && c.lackRank >= 0)
        return absl::ResourceExhaustedError(absl::StrCat(
            "no parallel configuration fits the devices' memory: ",
            lackText(devices, c), " under ", c.label, "\n", notes));
    return absl::InvalidArgumentError(absl::StrCat(
        "--auto could compile none of its best candidates:\n", notes));
  }
  res.plans = std::move(exact.plans);
  res.chosenJson = config::toJson(res.chosen);
  res.predicted = exact.time;
  res.estimated = cands[chosen].time;

  const double totalSec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const char *what = opts.latency ? "forward latency" : "step";
  std::string &out = res.report;
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "galaxyc --auto: %d device(s), objective %s: %d candidates from "
          "%d probe compiles, searched in %.2f s (every group method, SPMD "
          "and pipelines; splits by water-filling, stages by bisection), %.2f "
          "s with the winner's compile\n",
          world, opts.latency ? "latency" : "step",
          static_cast<int>(cands.size()), probes, searchSec, totalSec));
  absl::StrAppend(&out, "chosen: ", cands[chosen].label, "\n");
  absl::StrAppend(&out, "predicted ", what, " ", ms(exact.time),
                  " (cost rules of the compiled plans; search estimate ",
                  ms(cands[chosen].time), ")\n");
  absl::StrAppend(&out, rankTable(devices, exact.ranks));
  for (size_t i = chosen + 1; i < cands.size(); ++i)
    if (cands[i].fits) {
      absl::StrAppend(&out, "runner-up: ", cands[i].label, ": ",
                      ms(cands[i].time), " (search estimate)\n");
      break;
    }
  if (opts.explain) {
    absl::StrAppend(&out, "the chosen candidate as the search estimated it:\n",
                    rankTable(devices, cands[chosen].ranks));
    absl::StrAppend(&out, "candidates considered (search estimates, best "
                          "first):\n");
    for (const Candidate &c : cands)
      absl::StrAppend(&out, "  ",
                      c.fits ? absl::StrFormat("%12s", ms(c.time))
                             : std::string("does not fit"),
                      "  ", c.label,
                      c.fits ? "" : absl::StrCat(": ", lackText(devices, c)),
                      "\n");
    if (!notes.empty())
      absl::StrAppend(&out, "notes:\n", notes);
  }
  return res;
}

absl::StatusOr<Result> predictConfig(const config::GalaxyConfig &resolved,
                                     const plan::Devices &devices,
                                     const Options &opts) {
  if (std::max(resolved.world_size, 1) != devices.devices_size())
    return absl::InvalidArgumentError(
        absl::StrCat("the config runs ", std::max(resolved.world_size, 1),
                     " rank(s) but the device description lists ",
                     devices.devices_size(), "; one device per rank"));
  SearchInput in{devices, resolved, opts.latency};
  auto c = compileExact(in, resolved);
  if (!c.ok())
    return absl::InternalError(c.status().message());
  Result res;
  res.chosen = resolved;
  res.chosenJson = config::toJson(resolved);
  res.predicted = res.estimated = c->time;
  res.plans = std::move(c->plans);
  absl::StrAppend(&res.report, "predicted ",
                  opts.latency ? "forward latency" : "step", " ", ms(c->time),
                  " on ", devices.devices_size(),
                  " device(s) (cost rules of the compiled plans)\n",
                  rankTable(devices, c->ranks));
  for (size_t r = 0; r < c->ranks.size(); ++r)
    if (c->ranks[r].memory > devices.devices(r).memory_gib() * kGiB)
      absl::StrAppend(&res.report, "warning: ", deviceName(devices, r),
                      " needs ", gib(c->ranks[r].memory), ", more than its ",
                      "memory_gib\n");
  return res;
}

} // namespace galaxy::planner
