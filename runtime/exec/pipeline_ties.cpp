// PipelineDriver::initTies() and sumTiedGradients(): parameters held by more
// than one stage (a tied embedding and LM head, Pipeline.tied). Every copy
// starts equal (the seeded init and --init go by name and global index) and
// accumulates its own stage's gradient over the step's microbatches; summing
// the accumulators over the copies before "update" gives every copy the
// gradient of the tied weight, so all of them take the same step (AdamW's
// state included) and stay equal. world rank 0's copy is the one saved
// (pipeline_save.cpp), which is stage 0's when stage 0 holds one.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/exec/pipeline_driver.h"

namespace galaxy::rt {

absl::Status PipelineDriver::initTies() {
  const plan::Plan &plan = ex_.plan();
  std::map<std::string, int> paramIndex;
  for (int i = 0; i < plan.params_size(); ++i)
    paramIndex[plan.params(i).name()] = i;
  // Keyed by the stages holding the copies and whether they are summed over
  // whole groups: what this rank sums there, and its description for the
  // check.
  using Key = std::pair<std::vector<int>, bool>;
  std::map<Key, std::vector<Tie>> byKey;
  std::map<Key, std::vector<std::string>> described;
  for (const plan::TiedParam &t : plan.pipeline().tied()) {
    std::vector<int> on(t.stages().begin(), t.stages().end());
    const bool sorted = std::is_sorted(on.begin(), on.end()) &&
                        std::adjacent_find(on.begin(), on.end()) == on.end();
    if (on.size() < 2 || !sorted || on.front() < 0 || on.back() >= stages_ ||
        !std::count(on.begin(), on.end(), stage_) ||
        t.partial_size() != int(on.size()))
      return absl::InvalidArgumentError(absl::StrCat(
          "Pipeline.tied lists parameter ", t.name(), " on stages [",
          absl::StrJoin(on, ", "), "] with ", t.partial_size(),
          " partial flags: it needs two or more distinct stages in ascending "
          "order below ",
          stages_, ", this one (", stage_,
          ") included, and one flag each; recompile the plan"));
    auto it = paramIndex.find(t.name());
    if (it == paramIndex.end())
      return absl::InvalidArgumentError(absl::StrCat(
          "Pipeline.tied names parameter ", t.name(), ", which stage ", stage_,
          "'s plan does not hold; recompile the plan"));
    const plan::Param &p = plan.params(it->second);
    if (!p.trainable())
      continue; // a frozen copy has no gradient; every copy is frozen alike
    absl::StatusOr<std::pair<float *, int64_t>> acc =
        ex_.optStateHost(it->second, 2);
    if (!acc.ok())
      return absl::Status(
          acc.status().code(),
          absl::StrCat("tied parameter ", t.name(), " of stage ", stage_,
                       ": its gradient accumulator: ", acc.status().message()));
    const std::vector<bool> partial(t.partial().begin(), t.partial().end());
    const int partials = std::count(partial.begin(), partial.end(), true);
    const bool whole = partials > 0 && partials < int(on.size());
    const Key key{on, whole};
    byKey[key].push_back(
        {t.name(), acc->first, acc->second, nullptr, whole,
         partial[std::find(on.begin(), on.end(), stage_) - on.begin()]});
    described[key].push_back(absl::StrCat(
        t.name(), " [", absl::StrJoin(p.global_shape(), "x"), "] slice at [",
        absl::StrJoin(p.slice_offset(), ","), "] of [",
        absl::StrJoin(p.slice_shape(), "x"), "], partial gradients [",
        absl::StrJoin(partial, ","), "]"));
  }
  if (byKey.empty())
    return absl::OkStatus();
  if (!world_)
    return absl::InvalidArgumentError(
        "the plan ties parameters across stages but runs without a world");
  // The members: this group position's ranks on the stages (world ranks
  // stage * G + groupRank_) when every copy's gradient is alike; every rank
  // of the stages when some are partial sums over their group and others
  // complete. Every member walks the keys in the same (sorted) order, so the
  // splits meet; and a member list never collides with another's.
  for (auto &[key, ties] : byKey) {
    const auto &[on, whole] = key;
    std::vector<int> members;
    for (int s : on)
      for (int r = 0; r < groupSize_; ++r)
        if (whole || r == groupRank_)
          members.push_back(s * groupSize_ + r);
    auto c = world_->split(members);
    if (!c.ok())
      return absl::Status(
          c.status().code(),
          absl::StrCat(who(stage_), ": joining the ranks of stages [",
                       absl::StrJoin(on, ", "),
                       "] that hold tied parameters: ", c.status().message()));
    comm::Communicator &comm = **c;
    // Every copy must be the same slice of the same tensor: compare the
    // members' descriptions (lengths, then the bytes as int32).
    const std::string mine = absl::StrJoin(described[key], "; ");
    std::vector<int32_t> lens(comm.size());
    int32_t len = int32_t(mine.size());
    absl::Status s = comm.allGatherV(&len, 1, lens.data(),
                                     std::vector<size_t>(comm.size(), 1));
    std::vector<size_t> counts(lens.begin(), lens.end());
    std::vector<int32_t> bytes(mine.begin(), mine.end()), all;
    for (size_t n : counts)
      all.resize(all.size() + n);
    if (s.ok())
      s = comm.allGatherV(bytes.data(), bytes.size(), all.data(), counts);
    if (!s.ok())
      return absl::Status(
          s.code(), absl::StrCat(who(stage_),
                                 ": checking the tied parameters with stages [",
                                 absl::StrJoin(on, ", "), "]: ", s.message()));
    size_t at = 0;
    for (int r = 0; r < comm.size(); ++r) {
      std::string theirs(all.begin() + at, all.begin() + at + counts[r]);
      at += counts[r];
      if (theirs != mine)
        return absl::FailedPreconditionError(absl::StrCat(
            "world rank ", comm.worldRank(r), " holds tied copies {", theirs,
            "} but ", who(stage_), " holds {", mine,
            "}; their gradients cannot be summed: compile every stage's plan "
            "in one galaxyc run"));
    }
    for (Tie &t : ties) {
      t.comm = c->get();
      ties_.push_back(t);
    }
    tieComms_[key] = std::move(*c);
  }
  return absl::OkStatus();
}

absl::Status PipelineDriver::sumTiedGradients() {
  // Communication: counted as idle, like the loss's sum.
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s;
  for (const Tie &t : ties_) {
    // Over whole groups each copy's share enters the sum once: a complete
    // copy from its group rank 0 only, a partial one from every rank. After
    // it a complete copy holds the sum on every rank and a partial one on
    // group rank 0 only, which its "update" all-reduces over the group.
    if (t.whole && !t.partial && groupRank_ != 0)
      std::fill(t.grad, t.grad + t.elements, 0.0f);
    s = t.comm->allReduceSum(t.grad, size_t(t.elements));
    if (!s.ok()) {
      s = absl::Status(s.code(), absl::StrCat(t.name, ": ", s.message()));
      break;
    }
    if (t.whole && t.partial && groupRank_ != 0)
      std::fill(t.grad, t.grad + t.elements, 0.0f);
  }
  stats_.idleSeconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  return s;
}

} // namespace galaxy::rt
