// PipelineDriver::init() and handshake(): the plan's pipeline checked in
// itself and against the world, the channels to the neighbour stages, and
// the boundary handshake over them.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/exec/pipeline_channel.h"
#include "runtime/exec/pipeline_driver.h"
#include "runtime/exec/pipeline_internal.h"
#include "runtime/plan/schedule.h"

namespace galaxy::rt {

using pipeline_detail::boundElements;
using pipeline_detail::kHandshakeTag;
using pipeline_detail::programName;
using pipeline_detail::recvString;
using pipeline_detail::sendString;

namespace {

// "pp.in.K" -> "K"; empty when `name` does not start with `prefix`.
std::string keyOf(const std::string &name, const std::string &prefix) {
  return absl::StartsWith(name, prefix) && name.size() > prefix.size()
             ? name.substr(prefix.size())
             : std::string();
}

} // namespace

absl::Status PipelineDriver::init() {
  const plan::Plan &plan = ex_.plan();
  const plan::Pipeline &pp = plan.pipeline();
  if (pp.num_stages() <= 0)
    return absl::InvalidArgumentError(
        "not a pipeline plan (Plan.pipeline.num_stages is 0); run it without "
        "the pipeline driver");
  stages_ = pp.num_stages();
  stage_ = pp.stage();
  groupSize_ = std::max(pp.group_size(), 1);
  groupRank_ = plan.rank();
  const int planWorld = std::max(plan.world(), 1);
  if (stage_ < 0 || stage_ >= stages_)
    return absl::InvalidArgumentError(
        absl::StrCat("the plan says stage ", stage_, " of ", stages_,
                     ", which is out of range; recompile it"));
  if (planWorld != groupSize_)
    return absl::InvalidArgumentError(
        absl::StrCat("the plan is rank ", groupRank_, " of ", planWorld,
                     " but its pipeline has ", groupSize_,
                     " ranks per stage (Pipeline.group_size); recompile it"));
  schedule_ = pp.schedule().empty() ? "gpipe" : pp.schedule();
  if (schedule_ != "gpipe" && schedule_ != "1f1b")
    return absl::InvalidArgumentError(
        absl::StrCat("unknown pipeline schedule '", schedule_,
                     "' in the plan; galaxy-run runs gpipe and 1f1b"));
  const int64_t B = plan.model().batch_size();
  int64_t sum = 0;
  for (int64_t n : pp.microbatch_sizes()) {
    // At most the batch: then no sum of them wraps before it is compared.
    if (n <= 0 || n > B)
      return absl::InvalidArgumentError(absl::StrCat(
          "the plan has a microbatch of ", n, " rows; recompile it"));
    offsets_.push_back(sum);
    sizes_.push_back(n);
    sum += n;
  }
  if (sizes_.empty() || sum != B)
    return absl::InvalidArgumentError(absl::StrCat(
        "the plan's microbatches [", absl::StrJoin(sizes_, ", "), "] hold ",
        sum, " rows but its batch has ", B, "; recompile it"));
  slots_ = ex_.stashSlots();
  wholeFields_ = pipeline_detail::wholeBatchFields(plan);
  // Slots are reused in FIFO order: the schedule must never start a
  // microbatch in a slot whose previous owner has not run its backward.
  {
    const int m = int(sizes_.size());
    std::vector<int> owner(slots_, -1);
    for (const plan::PipeOp &op :
         plan::stageSchedule(schedule_, stage_, stages_, m)) {
      int &o = owner[plan::slotOf(op.microbatch, slots_)];
      if (op.forward && o >= 0)
        return absl::InvalidArgumentError(absl::StrCat(
            "the plan has ", slots_, " stash slots (Pipeline.slots) but the ",
            schedule_, " schedule of stage ", stage_, " with ", m,
            " microbatches holds ",
            plan::stashSlots(schedule_, stage_, stages_, m),
            " at once; recompile it"));
      o = op.forward ? op.microbatch : -1;
    }
  }

  for (const std::string &n : pp.in_names()) {
    std::string k = keyOf(n, "pp.in.");
    if (k.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "Pipeline.in_names holds '", n, "', not a pp.in.K name"));
    inKeys_.push_back(k);
  }
  for (const std::string &n : pp.out_names()) {
    std::string k = keyOf(n, "pp.out.");
    if (k.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "Pipeline.out_names holds '", n, "', not a pp.out.K name"));
    outKeys_.push_back(k);
  }
  std::sort(inKeys_.begin(), inKeys_.end());
  std::sort(outKeys_.begin(), outKeys_.end());
  const bool first = stage_ == 0, last = stage_ + 1 == stages_;
  if (first != inKeys_.empty() || last != outKeys_.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "stage ", stage_, " of ", stages_, " receives [",
        absl::StrJoin(pp.in_names(), ", "), "] and sends [",
        absl::StrJoin(pp.out_names(), ", "),
        "]: every stage but the first must receive activations and every "
        "stage but the last must send them; recompile the plan"));

  // The programs of every microbatch size must come in complete sets and
  // bind what crosses the stage boundaries.
  std::map<std::string, const plan::Program *> programs;
  for (const plan::Program &p : plan.programs())
    programs[p.name()] = &p;
  auto find = [&](const std::string &name) -> const plan::Program * {
    auto it = programs.find(name);
    return it == programs.end() ? nullptr : it->second;
  };
  auto need = [&](const plan::Program *p, const std::string &name, bool input,
                  const std::string &progName) -> absl::Status {
    if (boundElements(plan, p, name, input) >= 0)
      return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        progName, " of stage ", stage_, " has no ", input ? "input" : "output",
        " '", name, "'; recompile the plan"));
  };
  for (int64_t n : std::set<int64_t>(sizes_.begin(), sizes_.end())) {
    const std::string fwd = programName("train_fwd", n),
                      bwd = programName("train_bwd", n),
                      eval = programName("eval_step", n);
    if (!find(fwd) != !find(bwd))
      return absl::InvalidArgumentError(
          absl::StrCat("the plan has ", find(fwd) ? fwd : bwd, " but not ",
                       find(fwd) ? bwd : fwd, "; recompile it"));
    for (const std::string &k : inKeys_) {
      for (const std::string &p : {fwd, eval})
        if (find(p))
          if (absl::Status s = need(find(p), "pp.in." + k, true, p); !s.ok())
            return s;
      if (find(bwd))
        if (absl::Status s = need(find(bwd), "pp.dgrad." + k, false, bwd);
            !s.ok())
          return s;
    }
    for (const std::string &k : outKeys_) {
      for (const std::string &p : {fwd, eval})
        if (find(p))
          if (absl::Status s = need(find(p), "pp.out." + k, false, p); !s.ok())
            return s;
      if (find(bwd))
        if (absl::Status s = need(find(bwd), "pp.grad." + k, true, bwd);
            !s.ok())
          return s;
    }
    if (last) {
      if (find(fwd))
        if (absl::Status s = need(find(fwd), "loss", false, fwd); !s.ok())
          return s;
      if (find(eval))
        if (absl::Status s = need(find(eval), "logits", false, eval); !s.ok())
          return s;
    }
  }

  // The plan is consistent in itself; now check it against the world.
  const int worldRank = stage_ * groupSize_ + groupRank_;
  const int worldSize = world_ ? world_->size() : 1,
            myRank = world_ ? world_->rank() : 0;
  if (worldSize != stages_ * groupSize_)
    return absl::FailedPreconditionError(
        absl::StrCat("the plan has ", stages_, " stages of ", groupSize_,
                     groupSize_ == 1 ? " rank" : " ranks", ", so it runs on ",
                     stages_ * groupSize_, " ranks, but the world has ",
                     worldSize, "; launch ", stages_ * groupSize_, " ranks"));
  if (myRank != worldRank)
    return absl::FailedPreconditionError(absl::StrCat(
        "the plan is for world rank ", worldRank, " (stage ", stage_, ", rank ",
        groupRank_, " of its stage) but this process is world rank ", myRank,
        "; load rank", myRank, ".plan.pb instead"));
  // Channels with the same-member rank of each neighbour stage. Both sides
  // name the pair lower rank first and split activations before gradients,
  // and every rank splits with its previous stage before its next one, so
  // the splits (collective over the pair) meet in order along the chain.
  const int G = groupSize_;
  if (!first) {
    const std::vector<int> pair = {worldRank - G, worldRank};
    auto act = world_->split(pair);
    if (!act.ok())
      return act.status();
    auto grad = world_->split(pair);
    if (!grad.ok())
      return grad.status();
    actIn_ = std::make_unique<Channel>(std::move(*act), false);
    gradOut_ = std::make_unique<Channel>(std::move(*grad), true);
  }
  if (!last) {
    const std::vector<int> pair = {worldRank, worldRank + G};
    auto act = world_->split(pair);
    if (!act.ok())
      return act.status();
    auto grad = world_->split(pair);
    if (!grad.ok())
      return grad.status();
    actOut_ = std::make_unique<Channel>(std::move(*act), true);
    gradIn_ = std::make_unique<Channel>(std::move(*grad), false);
  }
  if (absl::Status s = handshake(); !s.ok())
    return s;
  return initTies();
}

// Both sides of each boundary describe what crosses it (schedule,
// microbatches, every tensor's element count per program); the receiving
// stage compares and tells the sender, so a plan from another compile
// fails here on both sides, by name, instead of as a garbled receive.
absl::Status PipelineDriver::handshake() {
  const plan::Plan &plan = ex_.plan();
  std::map<std::string, const plan::Program *> programs;
  for (const plan::Program &p : plan.programs())
    programs[p.name()] = &p;
  auto find = [&](const std::string &name) -> const plan::Program * {
    auto it = programs.find(name);
    return it == programs.end() ? nullptr : it->second;
  };
  // towardNext: this stage as the sender of pp.out.K (and receiver of
  // pp.grad.K); else as the receiver of pp.in.K (and sender of pp.dgrad.K).
  auto describe = [&](bool towardNext) {
    std::string d = absl::StrCat(schedule_, " schedule, ", stages_,
                                 " stages of ", groupSize_, ", microbatches [",
                                 absl::StrJoin(sizes_, ","), "]");
    for (int64_t n : std::set<int64_t>(sizes_.begin(), sizes_.end()))
      for (const std::string &k : towardNext ? outKeys_ : inKeys_) {
        auto count = [&](const char *kind, const char *prefix, bool input) {
          int64_t c = boundElements(plan, find(programName(kind, n)),
                                    prefix + k, input);
          return c < 0 ? std::string("-") : absl::StrCat(c);
        };
        absl::StrAppend(
            &d, "; ", k, " of b", n, ": forward ",
            count("train_fwd", towardNext ? "pp.out." : "pp.in.", !towardNext),
            ", backward ",
            count("train_bwd", towardNext ? "pp.grad." : "pp.dgrad.",
                  towardNext),
            ", eval ",
            count("eval_step", towardNext ? "pp.out." : "pp.in.", !towardNext));
      }
    return d;
  };
  auto failed = [&](absl::Status s, int peerStage) {
    return absl::Status(
        s.code(), absl::StrCat(who(stage_), ": checking the boundary with ",
                               who(peerStage), ": ", s.message()));
  };
  if (actIn_) {
    auto theirs = recvString(actIn_->comm(), actIn_->peer(), kHandshakeTag);
    if (!theirs.ok())
      return failed(theirs.status(), stage_ - 1);
    const std::string mine = describe(false);
    std::string verdict =
        *theirs == mine
            ? std::string()
            : absl::StrCat("stage ", stage_ - 1, " sends {", *theirs,
                           "} but stage ", stage_, " expects {", mine,
                           "}; compile every stage's plan in one galaxyc run");
    if (absl::Status s = sendString(gradOut_->comm(), gradOut_->peer(),
                                    kHandshakeTag, verdict);
        !s.ok())
      return failed(s, stage_ - 1);
    if (!verdict.empty())
      return absl::FailedPreconditionError(verdict);
  }
  if (actOut_) {
    if (absl::Status s = sendString(actOut_->comm(), actOut_->peer(),
                                    kHandshakeTag, describe(true));
        !s.ok())
      return failed(s, stage_ + 1);
    auto verdict = recvString(gradIn_->comm(), gradIn_->peer(), kHandshakeTag);
    if (!verdict.ok())
      return failed(verdict.status(), stage_ + 1);
    if (!verdict->empty())
      return absl::FailedPreconditionError(*verdict);
  }
  return absl::OkStatus();
}

} // namespace galaxy::rt
