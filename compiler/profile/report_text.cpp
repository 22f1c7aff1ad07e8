// DeepSpeed flops-profiler layout: summary, aggregated profile by depth, then
// the detailed tree where every node shows its share of its rank's totals.
#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "compiler/profile/counting_rules.h"
#include "compiler/profile/report.h"

namespace galaxy::profile {
namespace {

// 1234567 -> "1.23 M" (DeepSpeed's number_to_string, decimal prefixes).
std::string si(double v, const std::string &unit = "") {
  if (std::abs(v) < 1000) // counts below a thousand are whole numbers
    return absl::StrFormat("%.0f%s", v, unit.empty() ? "" : " " + unit);
  const char *prefix[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  while (std::abs(v) >= 1000 && i < 5) {
    v /= 1000;
    ++i;
  }
  return absl::StrFormat("%.2f %s%s", v, prefix[i], unit);
}

std::string bytes(double b) {
  const char *prefix[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) {
    b /= 1024;
    ++i;
  }
  return i == 0 ? absl::StrFormat("%.0f B", b)
                : absl::StrFormat("%.2f %s", b, prefix[i]);
}

std::string pct(int64_t part, int64_t whole) {
  return whole ? absl::StrFormat("%.2f%%", 100.0 * part / whole)
               : std::string("-");
}

std::string rankLabel(const RankProfile &r) {
  return r.rank >= 0 ? absl::StrCat("rank ", r.rank) : std::string("total");
}

// --- summary -----------------------------------------------------------------
void summary(const Profile &p, std::string &out) {
  std::vector<const RankProfile *> cols;
  for (const RankProfile &r : p.ranks)
    cols.push_back(&r);
  if (p.ranks.size() > 1)
    cols.push_back(&p.total);
  auto row = [&](const std::string &label,
                 const std::function<std::string(const RankProfile &)> &cell) {
    out += absl::StrFormat("%-34s", label);
    for (const RankProfile *r : cols)
      out += absl::StrFormat(" %18s", cell(*r));
    out += "\n";
  };
  row("", [](const RankProfile &r) { return rankLabel(r); });
  row("params", [](const RankProfile &r) { return si(r.fig.params); });
  row("params (trainable)",
      [](const RankProfile &r) { return si(r.fig.trainable); });
  row("fwd MACs",
      [](const RankProfile &r) { return si(r.fig.fwdMacs, "MACs"); });
  row("fwd FLOPs",
      [](const RankProfile &r) { return si(r.fig.fwdFlops, "FLOPs"); });
  row("bwd FLOPs",
      [](const RankProfile &r) { return si(r.fig.bwdFlops, "FLOPs"); });
  row("optimizer FLOPs",
      [](const RankProfile &r) { return si(r.fig.optFlops, "FLOPs"); });
  row("step FLOPs (fwd + bwd + optimizer)",
      [](const RankProfile &r) { return si(r.fig.stepFlops(), "FLOPs"); });
  // One row per collective kind and direction seen on any rank.
  for (const CommOp &k : p.total.comm) {
    row(absl::StrFormat("comm %s (%s)", k.kind, k.backward ? "bwd" : "fwd"),
        [&](const RankProfile &r) {
          for (const CommOp &c : r.comm)
            if (c.kind == k.kind && c.backward == k.backward)
              return absl::StrFormat("%s x%d", bytes(c.bytes), c.count);
          return std::string("-");
        });
  }
  row("comm per step",
      [](const RankProfile &r) { return bytes(r.fig.commBytes); });
  row("memory: weights",
      [](const RankProfile &r) { return bytes(r.memory.weights); });
  row("memory: gradients (sum)",
      [](const RankProfile &r) { return bytes(r.memory.gradients); });
  row("memory: gradients (largest live)",
      [](const RankProfile &r) { return bytes(r.memory.gradientsLive); });
  row("memory: optimizer state",
      [](const RankProfile &r) { return bytes(r.memory.optimizerState); });
  row("memory: inputs",
      [](const RankProfile &r) { return bytes(r.memory.inputs); });
  row("memory: activation arena",
      [](const RankProfile &r) { return bytes(r.memory.activationArena); });
  row("memory: peak",
      [](const RankProfile &r) { return bytes(r.memory.peak); });
}

// --- aggregated profile ------------------------------------------------------
// Nodes of one kind at one depth add up: "layer.0".."layer.11" -> "layer".
std::string kindName(const std::string &name) {
  size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot + 1 < name.size() &&
      std::all_of(name.begin() + dot + 1, name.end(), ::isdigit))
    return name.substr(0, dot);
  return name;
}

void collect(const Node &n, int depth,
             std::vector<std::map<std::string, Figures>> &byDepth) {
  if (byDepth.size() <= size_t(depth))
    byDepth.resize(depth + 1);
  byDepth[depth][kindName(n.name)] += n.fig;
  for (const Node &c : n.children)
    collect(c, depth + 1, byDepth);
}

void aggregated(const RankProfile &r, const ReportOptions &o,
                std::string &out) {
  std::vector<std::map<std::string, Figures>> byDepth;
  collect(r.tree, 0, byDepth);
  out += absl::StrFormat(
      "\nAggregated profile of %s: top %d kinds per depth (same-kind nodes "
      "summed, e.g. layer = all layer.N)\n",
      rankLabel(r), o.topModules);
  struct Metric {
    const char *label;
    std::function<int64_t(const Figures &)> get;
    std::function<std::string(int64_t)> show;
  };
  std::vector<Metric> metrics = {
      {"params", [](const Figures &f) { return f.params; },
       [](int64_t v) { return si(v); }},
      {"fwd MACs", [](const Figures &f) { return f.fwdMacs; },
       [](int64_t v) { return si(v, "MACs"); }},
      {"fwd FLOPs", [](const Figures &f) { return f.fwdFlops; },
       [](int64_t v) { return si(v, "FLOPs"); }},
      {"bwd FLOPs", [](const Figures &f) { return f.bwdFlops; },
       [](int64_t v) { return si(v, "FLOPs"); }},
      {"comm", [](const Figures &f) { return f.commBytes; },
       [](int64_t v) { return bytes(v); }},
  };
  for (size_t d = 0; d < byDepth.size(); ++d) {
    if (o.depth >= 0 && int(d) > o.depth)
      break;
    out += absl::StrFormat("depth %d:\n", d);
    for (const Metric &m : metrics) {
      std::vector<std::pair<std::string, int64_t>> items;
      for (const auto &[name, f] : byDepth[d])
        if (m.get(f) > 0)
          items.push_back({name, m.get(f)});
      std::stable_sort(
          items.begin(), items.end(),
          [](const auto &a, const auto &b) { return a.second > b.second; });
      if (items.size() > size_t(o.topModules))
        items.resize(o.topModules);
      std::vector<std::string> parts;
      for (const auto &[name, v] : items)
        parts.push_back(absl::StrCat(name, ": ", m.show(v)));
      out += absl::StrFormat("    %-10s - {%s}\n", m.label,
                             absl::StrJoin(parts, ", "));
    }
  }
}

// --- detailed tree -----------------------------------------------------------
void detailed(const Node &n, const Figures &all, int depth,
              const ReportOptions &o, std::string &out) {
  if (o.depth >= 0 && depth > o.depth)
    return;
  // Zero figures are left out so op lines stay short.
  const Figures &f = n.fig;
  std::vector<std::string> parts = {absl::StrFormat(
      "%s = %s params", si(f.params), pct(f.params, all.params))};
  auto add = [&](int64_t v, int64_t whole, const std::string &shown,
                 const char *what) {
    if (v)
      parts.push_back(
          absl::StrFormat("%s = %s %s", shown, pct(v, whole), what));
  };
  add(f.fwdMacs, all.fwdMacs, si(f.fwdMacs, "MACs"), "fwd MACs");
  add(f.fwdFlops, all.fwdFlops, si(f.fwdFlops, "FLOPs"), "fwd FLOPs");
  add(f.bwdFlops, all.bwdFlops, si(f.bwdFlops, "FLOPs"), "bwd FLOPs");
  add(f.optFlops, all.optFlops, si(f.optFlops, "FLOPs"), "optimizer");
  add(f.commBytes, all.commBytes, bytes(f.commBytes), "comm");
  out += absl::StrFormat("%s%s: %s, %d ops\n", std::string(2 * depth, ' '),
                         n.name, absl::StrJoin(parts, ", "), f.ops);
  for (const Node &c : n.children)
    detailed(c, all, depth + 1, o, out);
}

} // namespace

std::string profileText(const Profile &p, const ReportOptions &o) {
  std::string rule(90, '-');
  std::string out = absl::StrFormat(
      "%s\nGalaxy static profile%s%s (program %s, batch %d, seq %d, "
      "optimizer %s)\n%s\n",
      rule, o.title.empty() ? "" : ": ", o.title, p.total.program, p.batch,
      p.seq, p.optimizer, rule);
  out += "Counting rules (DeepSpeed flops-profiler conventions, applied per "
         "rank):\n";
  for (const std::string &r : countingRules())
    out += "  - " + r + "\n";
  out += "params: elements a rank holds (its slices).\n";
  if (p.ranks.size() > 1)
    out += "total: params are the model's own, each counted once; every other "
           "figure is the "
           "sum over ranks.\n";
  if (!p.total.uncounted.empty())
    out += absl::StrCat("WARNING: no counting rule for: ",
                        absl::StrJoin(p.total.uncounted, ", "),
                        " (counted as 0 FLOPs)\n");
  out +=
      absl::StrFormat("\n%s\nSummary per rank and in total\n%s\n", rule, rule);
  summary(p, out);

  out += absl::StrFormat(
      "\n%s\nAggregated profile by depth (model -> group -> block -> op)\n%s",
      rule, rule);
  for (const RankProfile &r : p.ranks)
    aggregated(r, o, out);
  if (p.ranks.size() > 1)
    aggregated(p.total, o, out);

  out += absl::StrFormat(
      "\n%s\nDetailed profile per rank: each node's figures and its share "
      "of the rank's totals\n%s\n",
      rule, rule);
  for (const RankProfile &r : p.ranks) {
    out += absl::StrFormat("%s:\n", rankLabel(r));
    detailed(r.tree, r.fig, 0, o, out);
  }
  return out;
}

} // namespace galaxy::profile
