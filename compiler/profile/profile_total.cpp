// The total over ranks: work, traffic and memory add up; parameters are the
// model's own, counted once.
#include "absl/strings/str_cat.h"
#include "compiler/profile/profile.h"
#include "runtime/plan/plan_sizes.h"

#include <algorithm>
#include <set>

namespace galaxy::profile {
namespace {

// Every rank's tree has the same shape (one module, only local shapes differ).
absl::Status addTree(Node &into, const Node &from) {
  if (into.name != from.name || into.children.size() != from.children.size())
    return absl::InternalError(absl::StrCat("rank trees differ at '", into.name,
                                            "' vs '", from.name, "'"));
  into.fig += from.fig;
  for (size_t i = 0; i < into.children.size(); ++i)
    if (absl::Status s = addTree(into.children[i], from.children[i]); !s.ok())
      return s;
  return absl::OkStatus();
}

void useGlobalParams(Node &n) {
  n.fig.params = n.globalParams;
  n.fig.trainable = n.globalTrainable;
  for (Node &c : n.children)
    useGlobalParams(c);
}

void addMemory(Memory &m, const Memory &o) {
  m.weights += o.weights;
  m.gradients += o.gradients;
  m.gradientsLive += o.gradientsLive;
  m.optimizerState += o.optimizerState;
  m.inputs += o.inputs;
  m.activationArena += o.activationArena;
  m.peak += o.peak;
}

} // namespace

absl::StatusOr<Profile> profileModule(mlir::ModuleOp module,
                                      const std::vector<plan::Plan> &plans) {
  if (plans.empty())
    return absl::InvalidArgumentError("profileModule needs at least one plan");
  Profile prof;
  prof.optimizer = plans[0].optimizer().kind();
  prof.batch = plans[0].model().batch_size();
  prof.seq = plans[0].model().seq_len();
  for (const plan::Plan &p : plans) {
    auto r = profileRank(module, p);
    if (!r.ok())
      return r.status();
    prof.ranks.push_back(std::move(*r));
  }
  RankProfile &t = prof.total;
  const RankProfile &first = prof.ranks[0];
  t.rank = -1;
  t.world = first.world;
  t.program = first.program;
  t.tree = first.tree;
  std::set<std::string> uncounted;
  for (size_t i = 0; i < prof.ranks.size(); ++i) {
    const RankProfile &r = prof.ranks[i];
    if (i > 0)
      if (absl::Status s = addTree(t.tree, r.tree); !s.ok())
        return s;
    addMemory(t.memory, r.memory);
    for (const CommOp &c : r.comm) {
      auto it =
          std::find_if(t.comm.begin(), t.comm.end(), [&](const CommOp &x) {
            return x.kind == c.kind && x.backward == c.backward;
          });
      if (it == t.comm.end())
        it = t.comm.insert(t.comm.end(), CommOp{c.kind, c.backward, 0, 0});
      it->count += c.count;
      it->bytes += c.bytes;
    }
    uncounted.insert(r.uncounted.begin(), r.uncounted.end());
  }
  useGlobalParams(t.tree);
  t.fig = t.tree.fig;
  t.uncounted.assign(uncounted.begin(), uncounted.end());
  return prof;
}

} // namespace galaxy::profile
