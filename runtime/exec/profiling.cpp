#include "runtime/exec/profiling.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::rt::profiling {

using nlohmann::json;

absl::StatusOr<MeasuredRank> measureRank(const plan::Plan &plan,
                                         const std::string &program,
                                         const std::vector<double> &sumSeconds,
                                         int64_t runs, double stepSeconds,
                                         double busySeconds) {
  const plan::Program *prog = nullptr;
  for (const plan::Program &p : plan.programs())
    if (p.name() == program)
      prog = &p;
  if (!prog)
    return absl::NotFoundError(absl::StrCat("the plan of rank ", plan.rank(),
                                            " has no program '", program,
                                            "' to profile"));
  if (runs <= 0 || int(sumSeconds.size()) != prog->instrs_size())
    return absl::FailedPreconditionError(
        absl::StrCat("no timed runs of '", program, "' (", runs, " runs, ",
                     sumSeconds.size(), " of ", prog->instrs_size(),
                     " instruction times); turn on Executor::setInstrTiming "
                     "before running"));
  MeasuredRank m;
  m.rank = plan.rank();
  m.world = std::max(plan.world(), 1);
  m.program = program;
  m.steps = runs;
  m.stepSeconds = stepSeconds;
  m.commBusySeconds = busySeconds / double(runs);
  for (int i = 0; i < prog->instrs_size(); ++i) {
    const plan::Instr &in = prog->instrs(i);
    m.instrs.push_back({in.kernel(), in.block(), in.backward(),
                        sumSeconds[i] / double(runs), double(in.flops())});
  }
  return m;
}

bool isCommunication(const std::string &kernel) {
  return kernel == "all_reduce" || kernel == "all_gather" ||
         kernel == "reduce_scatter";
}

std::string regionOf(const InstrSample &s) {
  return s.block.empty() ? "other" : s.block;
}

namespace {
bool isOptimizer(const std::string &kernel) {
  return kernel == "sgd_update" || kernel == "adamw_update";
}

double perSecond(double flops, double seconds) {
  return seconds > 0 ? flops / seconds : 0;
}

// "att.3" -> {"layer.3", "att"}; "embedding" -> {"embedding", "embedding"}:
// the group/block split of galaxyc's tree (compiler/profile/profile_rank.cpp).
std::pair<std::string, std::string> groupAndBlock(const std::string &region) {
  auto dot = region.rfind('.');
  if (dot != std::string::npos && dot + 1 < region.size() &&
      std::all_of(region.begin() + dot + 1, region.end(),
                  [](unsigned char c) { return std::isdigit(c); }))
    return {absl::StrCat("layer.", region.substr(dot + 1)),
            region.substr(0, dot)};
  return {region, region};
}
} // namespace

std::vector<Region> regionsOf(const MeasuredRank &m) {
  std::vector<Region> out;
  std::map<std::string, size_t> index;
  for (const InstrSample &s : m.instrs) {
    std::string name = regionOf(s);
    auto [it, added] = index.emplace(name, out.size());
    if (added)
      out.push_back(Region{name});
    Region &r = out[it->second];
    (isCommunication(s.kernel) ? r.comm
     : isOptimizer(s.kernel)   ? r.optimizer
     : s.backward              ? r.backward
                               : r.forward) += s.seconds;
    r.flops += s.flops;
  }
  return out;
}

double totalSeconds(const MeasuredRank &m) {
  double t = 0;
  for (const InstrSample &s : m.instrs)
    t += s.seconds;
  return t;
}

double commSeconds(const MeasuredRank &m) {
  double t = 0;
  for (const InstrSample &s : m.instrs)
    if (isCommunication(s.kernel))
      t += s.seconds;
  return t;
}

json rankJson(const MeasuredRank &m) {
  json instrs = json::array();
  for (const InstrSample &s : m.instrs)
    instrs.push_back({{"kernel", s.kernel},
                      {"block", s.block},
                      {"backward", s.backward},
                      {"seconds", s.seconds},
                      {"flops", s.flops}});
  return {{"rank", m.rank},
          {"world", m.world},
          {"program", m.program},
          {"steps", m.steps},
          {"step_seconds", m.stepSeconds},
          {"comm_busy_seconds", m.commBusySeconds},
          {"instrs", std::move(instrs)}};
}

absl::StatusOr<MeasuredRank> rankFromJson(const json &j) {
  try {
    MeasuredRank m;
    m.rank = j.at("rank").get<int>();
    m.world = j.at("world").get<int>();
    m.program = j.at("program").get<std::string>();
    m.steps = j.at("steps").get<int64_t>();
    m.stepSeconds = j.at("step_seconds").get<double>();
    m.commBusySeconds = j.value("comm_busy_seconds", 0.0);
    for (const json &s : j.at("instrs"))
      m.instrs.push_back(
          {s.at("kernel").get<std::string>(), s.at("block").get<std::string>(),
           s.at("backward").get<bool>(), s.at("seconds").get<double>(),
           s.at("flops").get<double>()});
    return m;
  } catch (const json::exception &e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed measured profile of a rank: ", e.what()));
  }
}

absl::StatusOr<std::vector<MeasuredRank>>
gatherMeasured(comm::Communicator *comm, const MeasuredRank &mine) {
  if (!comm || comm->size() <= 1)
    return std::vector<MeasuredRank>{mine};
  // Ranks' programs differ in length: ship each as JSON text packed in int32
  // words (the communicator moves f32/i32), lengths first.
  std::string text = rankJson(mine).dump();
  text.resize((text.size() + 3) / 4 * 4, ' ');
  const int world = comm->size();
  std::vector<int32_t> words(world, 0);
  int32_t myWords = int32_t(text.size() / 4);
  if (absl::Status s = comm->allGatherV(&myWords, 1, words.data(),
                                        std::vector<size_t>(world, 1));
      !s.ok())
    return s;
  std::vector<size_t> counts(words.begin(), words.end());
  size_t total = 0;
  for (size_t c : counts)
    total += c;
  std::vector<int32_t> mineWords(myWords), all(total);
  std::memcpy(mineWords.data(), text.data(), text.size());
  if (absl::Status s = comm->allGatherV(mineWords.data(), mineWords.size(),
                                        all.data(), counts);
      !s.ok())
    return s;
  std::vector<MeasuredRank> out;
  const char *bytes = reinterpret_cast<const char *>(all.data());
  for (size_t r = 0, at = 0; r < counts.size(); at += counts[r++]) {
    json j = json::parse(bytes + 4 * at, bytes + 4 * (at + counts[r]), nullptr,
                         /*allow_exceptions=*/false);
    if (j.is_discarded())
      return absl::DataLossError(
          absl::StrCat("rank ", r, "'s measured profile arrived garbled"));
    auto m = rankFromJson(j);
    if (!m.ok())
      return m.status();
    out.push_back(std::move(*m));
  }
  return out;
}

std::string measuredText(const std::vector<MeasuredRank> &ranks) {
  if (ranks.empty())
    return "";
  const MeasuredRank &m = ranks[0];
  const double total = totalSeconds(m);
  std::string t = absl::StrFormat(
      "\n-------------------- measured profile: %s, rank %d of %d, mean of %d "
      "step%s --------------------\n"
      "Times are per step (steady_clock around each instruction); GFLOP/s "
      "counts the matmul-like kernels (linear, linear_weight_grad, matmul).\n"
      "Optimizer updates and collectives have their own columns.\n\n",
      m.program, m.rank, m.world, m.steps, m.steps == 1 ? "" : "s");
  t += absl::StrFormat("%-12s %10s %10s %10s %10s %10s %7s %9s\n", "region",
                       "fwd ms", "bwd ms", "opt ms", "comm ms", "total ms",
                       "share", "GFLOP/s");
  for (const Region &r : regionsOf(m))
    t += absl::StrFormat(
        "%-12s %10.3f %10.3f %10.3f %10.3f %10.3f %6.2f%% %9.2f\n", r.name,
        1e3 * r.forward, 1e3 * r.backward, 1e3 * r.optimizer, 1e3 * r.comm,
        1e3 * r.seconds(), total > 0 ? 100 * r.seconds() / total : 0,
        1e-9 * perSecond(r.flops, r.seconds()));
  double flops = 0;
  for (const InstrSample &s : m.instrs)
    flops += s.flops;
  const double comm = commSeconds(m);
  t += absl::StrFormat("%-12s %44s%10.3f %6.2f%% %9.2f\n", "total", "",
                       1e3 * total, 100.0, 1e-9 * perSecond(flops, total));
  // Same-kind regions summed (all att.i together), DeepSpeed's aggregate view.
  std::vector<std::pair<std::string, double>> kinds;
  for (const Region &r : regionsOf(m)) {
    std::string kind = groupAndBlock(r.name).second;
    auto it = std::find_if(kinds.begin(), kinds.end(),
                           [&](const auto &k) { return k.first == kind; });
    if (it == kinds.end())
      kinds.push_back({kind, r.seconds() - r.comm});
    else
      it->second += r.seconds() - r.comm;
  }
  kinds.push_back({"comm", comm});
  t += "by block kind:";
  for (const auto &[kind, sec] : kinds)
    t += absl::StrFormat("  %s %.1f ms (%.1f%%)", kind, 1e3 * sec,
                         total > 0 ? 100 * sec / total : 0);
  t += "\n";
  t += absl::StrFormat("time in communication: %.3f ms (%.2f%%)\n", 1e3 * comm,
                       total > 0 ? 100 * comm / total : 0);
  if (m.commBusySeconds > 0) // overlapped: `comm` is what was waited for
    t += absl::StrFormat(
        "collectives overlapped: %.3f ms on the communication thread, %.3f ms "
        "of it exposed (waited for), %.1f%% hidden\n",
        1e3 * m.commBusySeconds, 1e3 * comm,
        100 * std::max(0.0, 1 - comm / m.commBusySeconds));
  if (m.stepSeconds > 0)
    t += absl::StrFormat("step wall time: %.3f ms (instructions cover %.1f%%; "
                         "the rest is batch input and output copies)\n",
                         1e3 * m.stepSeconds, 100 * total / m.stepSeconds);
  if (ranks.size() > 1) {
    t += absl::StrFormat("\n%-6s %10s %10s %7s %10s %9s\n", "rank", "total ms",
                         "comm ms", "comm %", "step ms", "GFLOP/s");
    for (const MeasuredRank &r : ranks) {
      double rt = totalSeconds(r), rc = commSeconds(r), rf = 0;
      for (const InstrSample &s : r.instrs)
        rf += s.flops;
      t += absl::StrFormat("%-6d %10.3f %10.3f %6.2f%% %10.3f %9.2f\n", r.rank,
                           1e3 * rt, 1e3 * rc, rt > 0 ? 100 * rc / rt : 0,
                           1e3 * r.stepSeconds, 1e-9 * perSecond(rf, rt));
    }
  }
  return t;
}

namespace {

json measuredFigures(double seconds, double rankTotal, double flops) {
  return {{"seconds", seconds},
          {"share", rankTotal > 0 ? seconds / rankTotal : 0.0},
          {"flops_per_s", perSecond(flops, seconds)}};
}

// A tree node while it is built: children in first-reached order.
struct Build {
  std::string name, kind;
  std::vector<int> instrs;
  double seconds = 0, flops = 0;
  std::vector<Build> children;
  Build &child(const std::string &n, const char *k) {
    for (Build &c : children)
      if (c.name == n)
        return c;
    children.push_back(Build{n, k});
    return children.back();
  }
};

void sumUp(Build &b) {
  for (Build &c : b.children) {
    sumUp(c);
    b.seconds += c.seconds;
    b.flops += c.flops;
  }
}

json buildJson(const Build &b, const std::string &parent, double total) {
  std::string path = parent.empty() ? b.name : parent + "/" + b.name;
  json j = {{"name", b.name}, {"kind", b.kind}, {"path", path}};
  if (b.kind == "op")
    j["instrs"] = b.instrs;
  j["measured"] = measuredFigures(b.seconds, total, b.flops);
  json children = json::array();
  for (const Build &c : b.children)
    children.push_back(buildJson(c, path, total));
  j["children"] = std::move(children);
  return j;
}

json treeOf(const MeasuredRank &m) {
  Build root{"model", "model"};
  for (size_t i = 0; i < m.instrs.size(); ++i) {
    const InstrSample &s = m.instrs[i];
    auto [group, block] = groupAndBlock(regionOf(s));
    Build &leaf =
        root.child(group, "group").child(block, "block").child(s.kernel, "op");
    leaf.instrs.push_back(int(i));
    leaf.seconds += s.seconds;
    leaf.flops += s.flops;
  }
  sumUp(root);
  return json::array({buildJson(root, "", root.seconds)});
}

} // namespace

json measuredJson(const std::vector<MeasuredRank> &ranks) {
  json out = json::array();
  for (const MeasuredRank &m : ranks) {
    const double total = totalSeconds(m);
    json seconds = json::array(), regions = json::array();
    for (const InstrSample &s : m.instrs)
      seconds.push_back(s.seconds);
    for (const Region &r : regionsOf(m))
      regions.push_back({{"name", r.name},
                         {"forward", r.forward},
                         {"backward", r.backward},
                         {"optimizer", r.optimizer},
                         {"comm", r.comm},
                         {"seconds", r.seconds()},
                         {"share", total > 0 ? r.seconds() / total : 0.0},
                         {"flops_per_s", perSecond(r.flops, r.seconds())}});
    out.push_back({{"rank", m.rank},
                   {"program", m.program},
                   {"steps", m.steps},
                   {"step_seconds", m.stepSeconds},
                   {"total_seconds", total},
                   {"comm_seconds", commSeconds(m)},
                   {"comm_busy_seconds", m.commBusySeconds},
                   {"instr_seconds", std::move(seconds)},
                   {"regions", std::move(regions)},
                   {"tree", treeOf(m)}});
  }
  return {{"measured_by", "galaxy-run --profile"},
          {"units", {{"seconds", "per step"}, {"flops_per_s", "matmul FLOPs"}}},
          {"program", ranks.empty() ? "" : ranks[0].program},
          {"steps", ranks.empty() ? 0 : ranks[0].steps},
          {"world", ranks.size()},
          {"ranks", std::move(out)}};
}

namespace {

// Fills "measured" bottom-up; returns the node's seconds. `seen` counts the
// instructions claimed, so a tree that misses or repeats some is caught.
absl::StatusOr<double> mergeNode(json &node, const MeasuredRank &m,
                                 double total, std::vector<int> &seen) {
  double seconds = 0;
  const std::string path = node.value("path", std::string("?"));
  if (node.contains("instrs"))
    for (const json &i : node["instrs"]) {
      int k = i.get<int>();
      if (k < 0 || k >= int(m.instrs.size()))
        return absl::InvalidArgumentError(absl::StrCat(
            "profile node ", path, " lists instruction ", k, " but rank ",
            m.rank, "'s ", m.program, " has ", m.instrs.size(),
            "; profile and run must come from the same config"));
      ++seen[k];
      seconds += m.instrs[k].seconds;
    }
  if (node.contains("children"))
    for (json &c : node["children"]) {
      auto s = mergeNode(c, m, total, seen);
      if (!s.ok())
        return s;
      seconds += *s;
    }
  auto flopsAt = [&](const char *key) -> double {
    return node.contains(key) ? node[key].value("flops", 0.0) : 0.0;
  };
  const double flops =
      flopsAt("forward") + flopsAt("backward") + flopsAt("optimizer");
  node["measured"] = measuredFigures(seconds, total, flops);
  return seconds;
}

} // namespace

absl::Status mergeMeasured(json &staticProfile,
                           const std::vector<MeasuredRank> &ranks) {
  if (!staticProfile.contains("ranks") || !staticProfile["ranks"].is_array())
    return absl::InvalidArgumentError(
        "the static profile has no \"ranks\" array; give the JSON that "
        "`galaxyc CONFIG --profile-json FILE` writes");
  json &sranks = staticProfile["ranks"];
  if (sranks.size() != ranks.size())
    return absl::InvalidArgumentError(absl::StrCat(
        "the static profile has ", sranks.size(), " ranks but the run had ",
        ranks.size(), "; profile with the same --mode and --world"));
  for (json &sr : sranks) {
    const int r = sr.value("rank", -1);
    const MeasuredRank *m = nullptr;
    for (const MeasuredRank &x : ranks)
      if (x.rank == r)
        m = &x;
    if (!m)
      return absl::InvalidArgumentError(
          absl::StrCat("the run measured no rank ", r));
    if (sr.value("program", std::string()) != m->program)
      return absl::InvalidArgumentError(
          absl::StrCat("rank ", r, ": the static profile is of '",
                       sr.value("program", std::string()),
                       "' but the run measured '", m->program, "'"));
    const double total = totalSeconds(*m);
    std::vector<int> seen(m->instrs.size(), 0);
    if (!sr.contains("tree"))
      return absl::InvalidArgumentError(
          absl::StrCat("rank ", r, " of the static profile has no \"tree\""));
    for (json &root : sr["tree"]) {
      auto s = mergeNode(root, *m, total, seen);
      if (!s.ok())
        return s.status();
    }
    for (size_t i = 0; i < seen.size(); ++i)
      if (seen[i] != 1)
        return absl::InvalidArgumentError(absl::StrCat(
            "rank ", r, ": instruction ", i, " (", m->instrs[i].kernel, " in ",
            regionOf(m->instrs[i]), ") appears ", seen[i],
            " times in the static tree; recompile the plan and the profile "
            "from the same config"));
    sr["measured"] = {{"steps", m->steps},
                      {"step_seconds", m->stepSeconds},
                      {"seconds", total},
                      {"comm_seconds", commSeconds(*m)}};
  }
  return absl::OkStatus();
}

namespace {

std::string xmlEscape(const std::string &s) {
  std::string o;
  for (char c : s)
    switch (c) {
    case '&':
      o += "&amp;";
      break;
    case '<':
      o += "&lt;";
      break;
    case '>':
      o += "&gt;";
      break;
    case '"':
      o += "&quot;";
      break;
    default:
      o += c;
    }
  return o;
}

const char *blockColour(const std::string &block) {
  static const std::map<std::string, const char *> colours = {
      {"embedding", "#8c564b"}, {"att", "#1f77b4"},    {"con", "#2ca02c"},
      {"mlp", "#ff7f0e"},       {"pooler", "#9467bd"}, {"head", "#d62728"}};
  auto it = colours.find(block);
  return it == colours.end() ? "#7f7f7f" : it->second;
}

} // namespace

std::string profileSvg(const std::vector<MeasuredRank> &ranks,
                       const std::string &title) {
  const double left = 70, width = 760, barH = 26, phaseH = 8, gap = 22,
               top = 50;
  double maxT = 0;
  for (const MeasuredRank &m : ranks)
    maxT = std::max(maxT, totalSeconds(m));
  if (maxT <= 0)
    maxT = 1e-9;
  const double scale = width / maxT;
  const double plotH = ranks.size() * (barH + phaseH + gap);
  const double height = top + plotH + 70;
  std::string s = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s"
      "</text>\n"
      "<text x=\"%.0f\" y=\"36\" fill=\"#555\">time per step by region (upper "
      "bar) and by phase (lower bar); hover a segment for its figures</text>\n",
      left + width + 30, height, left + width + 30, height, left,
      xmlEscape(title), left);
  // Axis ticks in ms.
  const double axisY = top + plotH;
  for (int k = 0; k <= 5; ++k) {
    double x = left + width * k / 5;
    s += absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                         "y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                         "<text x=\"%.1f\" y=\"%.1f\" "
                         "text-anchor=\"middle\">%.1f</text>\n",
                         x, top - 4, x, axisY, x, axisY + 14,
                         1e3 * maxT * k / 5);
  }
  s += absl::StrFormat(
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">ms per step</text>\n",
      left + width / 2, axisY + 28);
  for (size_t i = 0; i < ranks.size(); ++i) {
    const MeasuredRank &m = ranks[i];
    const double y = top + i * (barH + phaseH + gap), total = totalSeconds(m);
    s += absl::StrFormat("<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">"
                         "rank %d</text>\n",
                         left - 8, y + barH / 2 + 4, m.rank);
    double x = left;
    for (const Region &r : regionsOf(m)) {
      auto [group, block] = groupAndBlock(r.name);
      // Alternate shades per layer, so neighbouring layers stay apart.
      const bool odd = group.rfind("layer.", 0) == 0 &&
                       std::atoi(group.c_str() + 6) % 2 == 1;
      const double w = r.seconds() * scale;
      s += absl::StrFormat(
          "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
          "fill=\"%s\" fill-opacity=\"%s\" stroke=\"white\" "
          "stroke-width=\"0.5\"><title>rank %d %s: %.3f ms (%.1f%%): fwd "
          "%.3f, bwd %.3f, opt %.3f, comm %.3f ms</title></rect>\n",
          x, y, w, barH, blockColour(block), odd ? "0.65" : "1", m.rank,
          xmlEscape(r.name), 1e3 * r.seconds(),
          total > 0 ? 100 * r.seconds() / total : 0, 1e3 * r.forward,
          1e3 * r.backward, 1e3 * r.optimizer, 1e3 * r.comm);
      x += w;
    }
    double fwd = 0, bwd = 0, opt = 0, com = 0;
    for (const Region &r : regionsOf(m)) {
      fwd += r.forward;
      bwd += r.backward;
      opt += r.optimizer;
      com += r.comm;
    }
    x = left;
    const std::pair<const char *, double> phases[] = {
        {"forward", fwd}, {"backward", bwd}, {"optimizer", opt}, {"comm", com}};
    const char *phaseColours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759"};
    for (int p = 0; p < 4; ++p) {
      const double w = phases[p].second * scale;
      s += absl::StrFormat(
          "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
          "fill=\"%s\"><title>rank %d %s: %.3f ms</title></rect>\n",
          x, y + barH + 2, w, phaseH, phaseColours[p], m.rank, phases[p].first,
          1e3 * phases[p].second);
      x += w;
    }
    s += absl::StrFormat("<text x=\"%.2f\" y=\"%.1f\">%.1f ms</text>\n",
                         left + total * scale + 4, y + barH / 2 + 4,
                         1e3 * total);
  }
  // Legend: block kinds, then phases.
  double lx = left, ly = axisY + 44;
  for (const char *b : {"embedding", "att", "con", "mlp", "pooler", "head"}) {
    s += absl::StrFormat(
        "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
        "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
        lx, ly, blockColour(b), lx + 13, ly + 9, b);
    lx += 80;
  }
  const char *names[] = {"fwd", "bwd", "opt", "comm"};
  const char *cols[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759"};
  for (int p = 0; p < 4; ++p) {
    s += absl::StrFormat(
        "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"4\" fill=\"%s\"/>"
        "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
        lx, ly + 3, cols[p], lx + 13, ly + 9, names[p]);
    lx += 50;
  }
  s += "</svg>\n";
  return s;
}

} // namespace galaxy::rt::profiling
