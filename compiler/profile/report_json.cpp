#include "compiler/profile/counting_rules.h"
#include "compiler/profile/report.h"

#include "nlohmann/json.hpp"

namespace galaxy::profile {
namespace {

using nlohmann::json;

json nodeJson(const Node &n, const std::string &parentPath) {
  std::string path = parentPath.empty() ? n.name : parentPath + "/" + n.name;
  json j = {{"name", n.name},
            {"kind", n.kind},
            {"path", path},
            {"params", n.fig.params},
            {"trainable", n.fig.trainable},
            {"forward", {{"macs", n.fig.fwdMacs}, {"flops", n.fig.fwdFlops}}},
            {"backward", {{"macs", n.fig.bwdMacs}, {"flops", n.fig.bwdFlops}}},
            {"optimizer", {{"flops", n.fig.optFlops}}},
            {"comm", {{"bytes", n.fig.commBytes}}},
            {"ops", n.fig.ops}};
  if (n.kind == "op")
    j["instrs"] = n.instrs;
  json children = json::array();
  for (const Node &c : n.children)
    children.push_back(nodeJson(c, path));
  j["children"] = std::move(children);
  return j;
}

json rankJson(const RankProfile &r) {
  json ops = json::array();
  for (const CommOp &c : r.comm)
    ops.push_back({{"kind", c.kind},
                   {"direction", c.backward ? "backward" : "forward"},
                   {"count", c.count},
                   {"bytes", c.bytes}});
  const Memory &m = r.memory;
  json j = {
      {"program", r.program},
      {"params", {{"total", r.fig.params}, {"trainable", r.fig.trainable}}},
      {"forward", {{"macs", r.fig.fwdMacs}, {"flops", r.fig.fwdFlops}}},
      {"backward", {{"macs", r.fig.bwdMacs}, {"flops", r.fig.bwdFlops}}},
      {"optimizer", {{"flops", r.fig.optFlops}}},
      {"step_flops", r.fig.stepFlops()},
      {"comm", {{"bytes", r.fig.commBytes}, {"ops", std::move(ops)}}},
      {"memory",
       {{"weights", m.weights},
        {"gradients", m.gradients},
        {"gradients_live", m.gradientsLive},
        {"optimizer_state", m.optimizerState},
        {"inputs", m.inputs},
        {"activation_arena", m.activationArena},
        {"peak", m.peak}}},
      {"uncounted_ops", r.uncounted},
      {"tree", json::array({nodeJson(r.tree, "")})}};
  if (r.rank >= 0)
    j["rank"] = r.rank;
  return j;
}

} // namespace

std::string profileJson(const Profile &p, int indent) {
  json ranks = json::array();
  for (const RankProfile &r : p.ranks)
    ranks.push_back(rankJson(r));
  json j = {{"conventions", countingRules()},
            {"units",
             {{"params", "elements"}, {"comm", "bytes"}, {"memory", "bytes"}}},
            {"optimizer", p.optimizer},
            {"batch", p.batch},
            {"seq", p.seq},
            {"world", p.ranks.size()},
            {"ranks", std::move(ranks)},
            {"total", rankJson(p.total)}};
  return j.dump(indent);
}

} // namespace galaxy::profile
