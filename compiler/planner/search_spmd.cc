#include "absl/strings/str_cat.h"
#include "compiler/config/parallel_modes.h"
#include "compiler/planner/search.h"
#include "compiler/planner/shares.h"

namespace galaxy::planner {

config::GalaxyConfig choiceBase(const config::GalaxyConfig &base,
                                const Method &m, bool asGroup, int world) {
  config::GalaxyConfig c = base;
  c.tp_num_attention_heads_list.clear();
  c.tp_intermediate_size_list.clear();
  c.seq_scatter_list.clear();
  c.stage_num_hidden_layers_list.clear();
  c.dp_batch_list.clear();
  c.pp_microbatch_list.clear();
  c.num_microbatches = 1;
  c.parallel_mode =
      asGroup ? config::ParallelMode::kPP : config::ParallelMode::kSerial;
  c.pp_group_mode = config::ParallelMode::kSerial;
  m.applyTo(c, asGroup);
  c.world_size = world;
  c.warnings.clear();
  return c;
}

namespace {

// Each block's share on each rank, from the rounded lists.
Work rankWork(const MethodModel &m, const config::GalaxyConfig &c, int rank,
              int64_t layers, int64_t decoderLayers) {
  config::GalaxyConfig copy = c;
  std::map<std::string, double> share;
  double mean = 0;
  int n = 0;
  const config::ParallelMode mode =
      copy.parallel_mode == config::ParallelMode::kPP ? copy.pp_group_mode
                                                      : copy.parallel_mode;
  for (const config::Split &s : config::splitsFor(copy, mode)) {
    share[s.list] = static_cast<double>((*s.values)[rank]) / s.total;
    mean += share[s.list];
    ++n;
  }
  mean = n ? mean / n : 1.0;
  auto at = [&](const std::string &block, const Affine &f) {
    const std::string &d = m.driver.at(block);
    return f.at(d.empty() || !share.count(d) ? mean : share[d]);
  };
  Work w;
  for (const auto &[b, f] : m.fixed)
    w += at(b, f);
  for (const auto &[b, f] : m.layer)
    w += at(b, f).scaled(layers);
  for (const auto &[b, f] : m.decoderLayer)
    w += at(b, f).scaled(decoderLayers);
  return w;
}

double meanShare(const std::vector<std::vector<int64_t>> &lists,
                 const std::vector<ListInfo> &info, int rank) {
  if (lists.empty())
    return 1.0;
  double s = 0;
  for (size_t k = 0; k < lists.size(); ++k)
    s += static_cast<double>(lists[k][rank]) / info[k].total;
  return s / lists.size();
}

} // namespace

Candidate searchSpmd(const SearchInput &in, const MethodModel &m) {
  const int world = in.devices.devices_size();
  const int64_t layers = in.base.num_hidden_layers;
  // Decoder layers (BART) cost their own (probe.h).
  const int64_t decLayers = m.decoderLayer.empty() ? 0 : in.base.decoder_layers;
  Candidate cand;
  cand.label = m.method.name();
  cand.cfg = choiceBase(in.base, m.method, false, world);
  std::vector<int> all(world);
  for (int i = 0; i < world; ++i)
    all[i] = i;
  const GroupNet net = groupNet(in.devices, all);
  // time_i(s) = a_i + b_i s; memory_i(s) = ma + mb s.
  Work wa, wb;
  for (const auto &[b, f] : m.fixed) {
    wa += f.a;
    wb += f.b;
  }
  for (const auto &[b, f] : m.layer) {
    wa += f.a.scaled(layers);
    wb += f.b.scaled(layers);
  }
  for (const auto &[b, f] : m.decoderLayer) {
    wa += f.a.scaled(decLayers);
    wb += f.b.scaled(decLayers);
  }
  const double ma = in.memScale * (m.memFixed.a + layers * m.memLayer.a +
                                   decLayers * m.memDecoderLayer.a);
  const double mb = in.memScale * (m.memFixed.b + layers * m.memLayer.b +
                                   decLayers * m.memDecoderLayer.b);
  double lo = 0;
  for (const ListInfo &l : m.lists)
    lo = std::max(lo, 1.0 / l.units());
  std::vector<double> a(world), b(world), hi(world);
  for (int i = 0; i < world; ++i) {
    const plan::Device &d = in.devices.devices(i);
    a[i] = timeOf(wa, d, net).total();
    b[i] = timeOf(wb, d, net).total();
    const double cap = d.memory_gib() * kGiB;
    hi[i] = mb > 0 ? std::min(1.0, (cap - ma) / mb) : (ma <= cap ? 1.0 : -1);
  }
  auto shares = waterFill(a, b, lo, hi);
  std::vector<double> s =
      shares ? *shares : std::vector<double>(world, 1.0 / world);
  // Whole units per list.
  std::vector<std::vector<int64_t>> lists;
  config::ParallelMode mode = cand.cfg.parallel_mode;
  auto splits = config::splitsFor(cand.cfg, mode);
  for (size_t k = 0; k < splits.size(); ++k) {
    *splits[k].values = roundShares(s, m.lists[k].units(), m.lists[k].multiple);
    lists.push_back(*splits[k].values);
  }
  // Predicted time and memory of the rounded split.
  cand.ranks.resize(world);
  std::vector<Seconds> t(world);
  for (int i = 0; i < world; ++i) {
    const plan::Device &d = in.devices.devices(i);
    t[i] = timeOf(rankWork(m, cand.cfg, i, layers, decLayers), d, net);
    cand.time = std::max(cand.time, t[i].total());
    const double mem = ma + mb * meanShare(lists, m.lists, i);
    cand.ranks[i].memory = mem;
    const double lack = mem - d.memory_gib() * kGiB;
    if (lack > 0 && lack > cand.lackBytes) {
      cand.fits = false;
      cand.lackRank = i;
      cand.lackBytes = lack;
      cand.needBytes = mem;
    }
  }
  for (int i = 0; i < world; ++i) {
    cand.ranks[i].compute = t[i].compute;
    cand.ranks[i].comm = t[i].comm;
    cand.ranks[i].idle = cand.time - t[i].total();
  }
  for (size_t k = 0; k < splits.size(); ++k) {
    absl::StrAppend(&cand.label, k ? ", " : " ", splits[k].list, " [");
    for (size_t i = 0; i < lists[k].size(); ++i)
      absl::StrAppend(&cand.label, i ? "," : "", lists[k][i]);
    absl::StrAppend(&cand.label, "]");
  }
  return cand;
}

} // namespace galaxy::planner
