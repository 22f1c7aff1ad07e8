#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "compiler/config/parallel_modes.h"
#include "compiler/planner/search.h"
#include "compiler/planner/shares.h"

namespace galaxy::planner {

Work optimizerPart(const Work &w) {
  Work o;
  o.optFlops = w.optFlops;
  o.optBytes = w.optBytes;
  o.coalescedCount = w.coalescedCount;
  o.coalescedBytes = w.coalescedBytes;
  return updateAlone(o);
}

Work withoutOptimizer(Work w) {
  w.optFlops = w.optBytes = 0;
  w.coalescedCount = w.coalescedBytes = w.coalescedGroups = 0;
  return w;
}

Work updateAlone(Work w) {
  w.reduceCount += w.coalescedCount;
  w.reduceBytes += w.coalescedBytes;
  w.coalescedCount = w.coalescedBytes = w.coalescedGroups = 0;
  return w;
}

double boundaryBytes(const SearchInput &in, int microbatches) {
  const double rows = static_cast<double>(in.base.batch_size) / microbatches;
  return rows * in.base.pad_size * in.base.hidden_size * 4 *
         (in.latency ? 1 : 2);
}

double pipelineStep(const SearchInput &in, int microbatches,
                    const std::vector<std::vector<Work>> &work,
                    const std::vector<std::vector<Work>> &opt,
                    const std::vector<double> &p2pBytes,
                    std::vector<RankTime> *ranks) {
  const int p = work.size(), g = work[0].size();
  const int m = in.latency ? 1 : microbatches;
  std::vector<std::vector<Seconds>> t(p, std::vector<Seconds>(g));
  std::vector<double> tau(p, 0), upd(p, 0);
  double slowest = 0, sum = 0, slowestUpdate = 0;
  auto groupOf = [g](int s) {
    std::vector<int> group;
    for (int r = 0; r < g; ++r)
      group.push_back(s * g + r);
    return group;
  };
  for (int s = 0; s < p; ++s) {
    const GroupNet net = groupNet(in.devices, groupOf(s));
    for (int r = 0; r < g; ++r) {
      const plan::Device &d = in.devices.devices(s * g + r);
      t[s][r] = timeOf(work[s][r], d, net);
      if (s + 1 < p) {
        const GroupNet link = pairNet(in.devices, s * g + r, (s + 1) * g + r);
        t[s][r].comm += link.latencySec + p2pBytes[s] / link.bytesPerSec;
      }
      tau[s] = std::max(tau[s], t[s][r].total());
      upd[s] = std::max(upd[s], timeOf(opt[s][r], d, net).total());
    }
    slowest = std::max(slowest, tau[s]);
    slowestUpdate = std::max(slowestUpdate, upd[s]);
    sum += tau[s];
  }
  const double step =
      in.latency ? sum : sum + (m - 1) * slowest + slowestUpdate;
  if (ranks) {
    ranks->assign(p * g, RankTime{});
    for (int s = 0; s < p; ++s)
      for (int r = 0; r < g; ++r) {
        RankTime &rt = (*ranks)[s * g + r];
        const plan::Device &d = in.devices.devices(s * g + r);
        const Seconds u =
            in.latency ? Seconds{}
                       : timeOf(opt[s][r], d, groupNet(in.devices, groupOf(s)));
        rt.compute = m * t[s][r].compute + u.compute;
        rt.comm = m * t[s][r].comm + u.comm;
        rt.idle = std::max(0.0, step - rt.compute - rt.comm);
      }
  }
  return step;
}

namespace {

// One microbatch's share of a full batch's work: FLOPs and bytes divide,
// and so do the GEMMs' rows (smaller GEMMs, slower where the device's
// gemm_at_rows says so); collectives happen once per microbatch all the same;
// no optimizer, nor the small gradient all-reduces before it (the update
// runs them, optimizerPart).
Work perMicrobatch(const Work &w, int m) {
  Work o = withoutOptimizer(w).scaled(1.0 / m).atRowsOver(m);
  o.reduceCount = w.reduceCount;
  o.gatherCount = w.gatherCount;
  return o;
}

// Work of the fixed blocks a stage holds: the embedding and the first
// layer's entry ("first.*") on the first stage, everything else (head,
// pooler, loss) on the last.
Work fixedOn(const MethodModel &m, int stage, int stages,
             const std::map<std::string, double> &share, double mean) {
  Work w;
  for (const auto &[b, f] : m.fixed) {
    const bool first = b == "embedding" || b.rfind("first.", 0) == 0;
    if ((first && stage == 0) || (!first && stage == stages - 1)) {
      const std::string &d = m.driver.at(b);
      w += f.at(d.empty() || !share.count(d) ? mean : share.at(d));
    }
  }
  return w;
}

Work layerAt(const MethodModel &m, const std::map<std::string, double> &share,
             double mean) {
  Work w;
  for (const auto &[b, f] : m.layer) {
    const std::string &d = m.driver.at(b);
    w += f.at(d.empty() || !share.count(d) ? mean : share.at(d));
  }
  return w;
}

} // namespace

std::vector<Candidate> searchPipeline(const SearchInput &in,
                                      const MethodModel &m, int p) {
  std::vector<Candidate> out;
  const int world = in.devices.devices_size();
  const int g = world / p;
  const int64_t layers = in.base.num_hidden_layers;
  const bool dpGroup = m.method.mode == config::ParallelMode::kDP;
  config::GalaxyConfig base = choiceBase(in.base, m.method, true, world);
  // Group shares: water-filling over group positions, each position as slow
  // as its slowest stage and as small as its smallest memory, layers spread
  // evenly (a pipeline+dp group splits rows evenly: nothing to choose).
  std::vector<double> share(g, 1.0 / g);
  // splitsFor(pp) leaves a dp group's rows to the compiler (even split).
  std::vector<config::Split> splits;
  if (!dpGroup)
    splits = config::splitsFor(base, base.pp_group_mode);
  if (g > 1 && !dpGroup) {
    const double perStage = static_cast<double>(layers) / p;
    Work wa, wb;
    for (const auto &[b, f] : m.layer) {
      wa += f.a.scaled(perStage);
      wb += f.b.scaled(perStage);
    }
    const double ma = in.memScale * (m.memFixed.a + perStage * m.memLayer.a);
    const double mb = in.memScale * (m.memFixed.b + perStage * m.memLayer.b);
    std::vector<double> a(g, 0), b(g, 0), hi(g, 1);
    for (int r = 0; r < g; ++r)
      for (int s = 0; s < p; ++s) {
        const plan::Device &d = in.devices.devices(s * g + r);
        a[r] = std::max(a[r], timeOf(wa, d, {}).total());
        b[r] = std::max(b[r], timeOf(wb, d, {}).total());
        const double cap = d.memory_gib() * kGiB;
        hi[r] = std::min(hi[r], mb > 0 ? (cap - ma) / mb : 1.0);
      }
    double lo = 0;
    for (const ListInfo &l : m.lists)
      lo = std::max(lo, 1.0 / l.units());
    if (auto s = waterFill(a, b, lo, hi))
      share = *s;
    for (size_t k = 0; k < splits.size(); ++k)
      *splits[k].values =
          roundShares(share, m.lists[k].units(), m.lists[k].multiple);
  }
  // Per group rank: each list's share, their mean.
  std::vector<std::map<std::string, double>> listShare(g);
  std::vector<double> mean(g, 1.0 / g);
  for (int r = 0; r < g && !splits.empty(); ++r) {
    mean[r] = 0;
    for (const config::Split &s : splits) {
      listShare[r][s.list] = static_cast<double>((*s.values)[r]) / s.total;
      mean[r] += listShare[r][s.list] / splits.size();
    }
  }
  if (g == 1)
    mean[0] = 1.0;

  std::vector<int> counts;
  if (in.latency) {
    counts = {1};
  } else {
    const int64_t maxM = dpGroup ? in.base.batch_size / g : in.base.batch_size;
    for (int64_t m2 : {int64_t{p}, 2 * int64_t{p}, 4 * int64_t{p},
                       8 * int64_t{p}, in.base.batch_size})
      if (m2 >= 1 && m2 <= maxM &&
          std::find(counts.begin(), counts.end(), m2) == counts.end())
        counts.push_back(static_cast<int>(m2));
  }
  for (int mb : counts) {
    Candidate cand;
    cand.cfg = base;
    cand.cfg.num_microbatches = mb;
    cand.cfg.pp_schedule = config::PipelineSchedule::k1F1B;
    // Stage s, group rank r: seconds per layer x and fixed y per microbatch.
    std::vector<std::vector<Seconds>> x(p, std::vector<Seconds>(g)),
        y(p, std::vector<Seconds>(g));
    std::vector<int64_t> lmax(p, layers);
    const double p2p = boundaryBytes(in, mb);
    for (int s = 0; s < p; ++s) {
      std::vector<int> group;
      for (int r = 0; r < g; ++r)
        group.push_back(s * g + r);
      const GroupNet net = groupNet(in.devices, group);
      for (int r = 0; r < g; ++r) {
        const plan::Device &d = in.devices.devices(s * g + r);
        x[s][r] = timeOf(perMicrobatch(layerAt(m, listShare[r], mean[r]), mb),
                         d, net);
        y[s][r] = timeOf(
            perMicrobatch(fixedOn(m, s, p, listShare[r], mean[r]), mb), d, net);
        if (s + 1 < p) {
          const GroupNet l = pairNet(in.devices, s * g + r, (s + 1) * g + r);
          y[s][r].comm += l.latencySec + p2p / l.bytesPerSec;
        }
        const double cap = d.memory_gib() * kGiB;
        const double fixedMem =
            s == 0 || s == p - 1 ? in.memScale * m.memFixed.at(mean[r]) : 0;
        const double perLayer = in.memScale * m.memLayer.at(mean[r]);
        const int64_t fit =
            perLayer > 0
                ? static_cast<int64_t>(std::floor((cap - fixedMem) / perLayer))
                : layers;
        lmax[s] = std::min(lmax[s], fit);
        if (fit < 1) {
          const double need = fixedMem + perLayer;
          if (need - cap > cand.lackBytes) {
            cand.fits = false;
            cand.lackRank = s * g + r;
            cand.lackBytes = need - cap;
            cand.needBytes = need;
          }
        }
      }
    }
    int64_t room = 0;
    for (int64_t l : lmax)
      room += std::max<int64_t>(l, 0);
    if (cand.fits && room < layers) {
      // Every stage full and layers left over: the tightest rank lacks them.
      cand.fits = false;
      int worst = 0;
      double worstLack = 0;
      for (int s = 0; s < p; ++s)
        for (int r = 0; r < g; ++r) {
          const double need =
              in.memScale *
              ((s == 0 || s == p - 1 ? m.memFixed.at(mean[r]) : 0) +
               m.memLayer.at(mean[r]) * static_cast<double>(layers) / p);
          const double lack =
              need - in.devices.devices(s * g + r).memory_gib() * kGiB;
          if (lack >= worstLack) {
            worstLack = lack;
            worst = s * g + r;
            cand.needBytes = need;
          }
        }
      cand.lackRank = worst;
      cand.lackBytes = std::max(worstLack, 1.0);
    }
    // Layers per stage: the least T with every stage's time <= T holding
    // all layers (bisection), then the surplus taken from the slowest.
    auto tauOf = [&](int s, int64_t l) {
      double t = 0;
      for (int r = 0; r < g; ++r)
        t = std::max(t, l * x[s][r].total() + y[s][r].total());
      return t;
    };
    auto layersAt = [&](double T) {
      std::vector<int64_t> l(p);
      for (int s = 0; s < p; ++s) {
        int64_t n = std::max<int64_t>(lmax[s], 1);
        for (int r = 0; r < g; ++r) {
          const double per = std::max(x[s][r].total(), 1e-30);
          n = std::min<int64_t>(
              n, static_cast<int64_t>(std::floor((T - y[s][r].total()) / per)));
        }
        l[s] = std::max<int64_t>(n, 1);
      }
      return l;
    };
    auto sum = [](const std::vector<int64_t> &l) {
      int64_t t = 0;
      for (int64_t v : l)
        t += v;
      return t;
    };
    double tLo = 0, tHi = 0;
    for (int s = 0; s < p; ++s)
      tHi = std::max(tHi, tauOf(s, layers));
    std::vector<int64_t> stagesList = layersAt(tHi);
    if (sum(stagesList) >= layers)
      for (int it = 0; it < 100; ++it) {
        const double mid = (tLo + tHi) / 2;
        (sum(layersAt(mid)) >= layers ? tHi : tLo) = mid;
      }
    stagesList = layersAt(tHi);
    while (sum(stagesList) > layers) {
      int pick = -1;
      for (int s = 0; s < p; ++s)
        if (stagesList[s] > 1 &&
            (pick < 0 ||
             tauOf(s, stagesList[s]) > tauOf(pick, stagesList[pick])))
          pick = s;
      if (pick < 0)
        break;
      --stagesList[pick];
    }
    while (sum(stagesList) < layers) { // memory-starved: fill the fastest
      int pick = 0;
      for (int s = 1; s < p; ++s)
        if (tauOf(s, stagesList[s] + 1) < tauOf(pick, stagesList[pick] + 1))
          pick = s;
      ++stagesList[pick];
    }
    cand.cfg.stage_num_hidden_layers_list = stagesList;
    // Its step, by the same formula the compiled plans are judged by.
    std::vector<std::vector<Work>> work(p, std::vector<Work>(g)),
        opt(p, std::vector<Work>(g));
    for (int s = 0; s < p; ++s)
      for (int r = 0; r < g; ++r) {
        const Work full =
            layerAt(m, listShare[r], mean[r]).scaled(stagesList[s]) +
            fixedOn(m, s, p, listShare[r], mean[r]);
        work[s][r] = perMicrobatch(full, mb);
        opt[s][r] = optimizerPart(full);
      }
    cand.time = pipelineStep(in, mb, work, opt, std::vector<double>(p, p2p),
                             &cand.ranks);
    for (int s = 0; s < p; ++s)
      for (int r = 0; r < g; ++r)
        cand.ranks[s * g + r].memory =
            in.memScale * ((s == 0 || s == p - 1 ? m.memFixed.at(mean[r]) : 0) +
                           m.memLayer.at(mean[r]) * stagesList[s]);
    cand.label =
        absl::StrCat("pp ", p, " x ", g == 1 ? "serial" : m.method.name(), " ",
                     g, ", ", mb, " microbatches, stages [");
    for (int s = 0; s < p; ++s)
      absl::StrAppend(&cand.label, s ? "," : "", stagesList[s]);
    absl::StrAppend(&cand.label, "]");
    for (const config::Split &sp : splits) {
      absl::StrAppend(&cand.label, ", ", sp.list, " [");
      for (size_t i = 0; i < sp.values->size(); ++i)
        absl::StrAppend(&cand.label, i ? "," : "", (*sp.values)[i]);
      absl::StrAppend(&cand.label, "]");
    }
    out.push_back(std::move(cand));
  }
  return out;
}

} // namespace galaxy::planner
