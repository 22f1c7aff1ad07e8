#include "runtime/exec/pipeline_driver.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/plan/schedule.h"

namespace galaxy::rt {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Channel messages are tagged with their microbatch index; these tags lie
// far above any, for the boundary handshake (on the channels) and for the
// eval results and saved parameters (on the world, which carries no other
// point-to-point traffic).
constexpr uint32_t kHandshakeTag = 0x50500000u;
constexpr uint32_t kEvalTag = 0x50500001u;
constexpr uint32_t kSaveTag = 0x50500002u;

std::string programName(const char *kind, int64_t rows) {
  return absl::StrCat(kind, ".b", rows);
}

int64_t elements(const plan::Buffer &b) {
  int64_t n = 1;
  for (int64_t d : b.global_shape_size() > 0 ? b.global_shape() : b.shape())
    n *= d;
  return n;
}

// Elements of the global tensor bound to `name` among `program`'s inputs
// (or outputs); -1 when the program has no such binding.
int64_t boundElements(const plan::Plan &plan, const plan::Program *program,
                      const std::string &name, bool input) {
  if (!program)
    return -1;
  for (const plan::Binding &b : input ? program->inputs() : program->outputs())
    if (b.name() == name)
      return elements(plan.buffers(b.buffer()));
  return -1;
}

// "pp.in.K" -> "K"; empty when `name` does not start with `prefix`.
std::string keyOf(const std::string &name, const std::string &prefix) {
  return absl::StartsWith(name, prefix) && name.size() > prefix.size()
             ? name.substr(prefix.size())
             : std::string();
}

// Strings over int32 messages: the length, then one element per byte.
absl::Status sendString(comm::Communicator &c, int peer, uint32_t tag,
                        const std::string &s) {
  int32_t n = int32_t(s.size());
  if (absl::Status st = c.send(&n, 1, peer, tag); !st.ok())
    return st;
  std::vector<int32_t> bytes(s.begin(), s.end());
  return c.send(bytes.data(), bytes.size(), peer, tag);
}

absl::StatusOr<std::string> recvString(comm::Communicator &c, int peer,
                                       uint32_t tag) {
  int32_t n = 0;
  if (absl::Status st = c.recv(&n, 1, peer, tag); !st.ok())
    return st;
  if (n < 0 || n > (1 << 24))
    return absl::DataLossError(
        absl::StrCat("a peer announced a message of ", n, " bytes"));
  std::vector<int32_t> bytes(n);
  if (absl::Status st = c.recv(bytes.data(), bytes.size(), peer, tag); !st.ok())
    return st;
  return std::string(bytes.begin(), bytes.end());
}

} // namespace

io::Batch sliceBatch(const io::Batch &batch, int64_t rowBegin, int64_t rows) {
  io::Batch out;
  out.size = rows;
  out.seqLen = batch.seqLen;
  // Each field is [size, ...] row-major (or empty): copy its rows.
  auto take = [&](const auto &src, auto &dst) {
    if (batch.size <= 0 || src.empty())
      return;
    const size_t per = src.size() / size_t(batch.size);
    dst.assign(src.begin() + rowBegin * per,
               src.begin() + (rowBegin + rows) * per);
  };
  take(batch.input_ids, out.input_ids);
  take(batch.attention_mask, out.attention_mask);
  take(batch.token_type_ids, out.token_type_ids);
  take(batch.labels, out.labels);
  return out;
}

// A point-to-point link to one neighbour rank over a two-member communicator.
// Outgoing links send from their own thread through a FIFO queue: a send
// blocks until the peer posts the matching receive, and in 1F1B both
// neighbours send at once (stage s its next activation, stage s+1 a
// gradient), so sending from the main thread would deadlock.
class PipelineDriver::Channel {
public:
  Channel(std::unique_ptr<comm::Communicator> comm, bool outgoing)
      : comm_(std::move(comm)), peer_(1 - comm_->rank()) {
    if (outgoing)
      thread_ = std::thread([this] { loop(); });
  }
  ~Channel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join(); // after the send in flight, if any, ends or fails
  }

  comm::Communicator &comm() { return *comm_; }
  int peer() const { return peer_; }

  absl::Status recv(float *buf, size_t n, uint32_t tag) {
    return comm_->recv(buf, n, peer_, tag);
  }

  // Queues a send; returns the error of an earlier send, if one failed.
  absl::Status post(uint32_t tag, std::vector<float> data) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok())
      return error_;
    queue_.push_back({tag, std::move(data)});
    cv_.notify_all();
    return absl::OkStatus();
  }

  // Waits until every queued send was received (or one failed).
  absl::Status drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || !error_.ok(); });
    return error_;
  }

private:
  struct Message {
    uint32_t tag;
    std::vector<float> data;
  };

  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_)
        return;
      Message m = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      absl::Status s = comm_->send(m.data.data(), m.data.size(), peer_, m.tag);
      lock.lock();
      busy_ = false;
      if (!s.ok() && error_.ok()) {
        error_ = s;
        queue_.clear(); // the link is broken: nothing more can go
      }
      cv_.notify_all();
    }
  }

  std::unique_ptr<comm::Communicator> comm_;
  int peer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool busy_ = false, stop_ = false;
  absl::Status error_;
  std::thread thread_;
};

PipelineDriver::PipelineDriver(comm::Communicator *world, Executor &ex)
    : world_(world), ex_(ex) {}

PipelineDriver::~PipelineDriver() {
  // Incoming links first: closing them makes a neighbour's pending send to
  // us fail at once, so joining our own senders cannot wait on each other.
  actIn_.reset();
  gradIn_.reset();
  actOut_.reset();
  gradOut_.reset();
}

absl::StatusOr<std::unique_ptr<PipelineDriver>>
PipelineDriver::create(comm::Communicator *world, Executor &executor) {
  std::unique_ptr<PipelineDriver> d(new PipelineDriver(world, executor));
  if (absl::Status s = d->init(); !s.ok())
    return s;
  return d;
}

std::string PipelineDriver::who(int stage) const {
  return absl::StrCat("stage ", stage, " (world rank ",
                      stage * groupSize_ + groupRank_, ")");
}

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
    if (n <= 0)
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
  return handshake();
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

absl::StatusOr<Outputs> PipelineDriver::runTimed(const std::string &program,
                                                 const io::Batch &batch,
                                                 const KernelContext &ctx,
                                                 int slot) {
  const auto t0 = Clock::now();
  absl::StatusOr<Outputs> out = ex_.run(program, batch, ctx, slot);
  stats_.busySeconds += since(t0);
  return out;
}

absl::StatusOr<std::map<std::string, std::vector<float>>>
PipelineDriver::receive(Channel &from, const std::string &program,
                        const std::vector<std::string> &names, int mb) {
  const plan::Plan &plan = ex_.plan();
  const plan::Program *p = nullptr;
  for (const plan::Program &q : plan.programs())
    if (q.name() == program)
      p = &q;
  std::map<std::string, std::vector<float>> got;
  for (const std::string &name : names) {
    const int64_t n = boundElements(plan, p, name, true);
    if (n < 0)
      return absl::InvalidArgumentError(absl::StrCat(
          program, " has no input '", name, "'; recompile the plan"));
    std::vector<float> &buf = got[name];
    buf.resize(n);
    const auto t0 = Clock::now();
    absl::Status s = from.recv(buf.data(), buf.size(), uint32_t(mb));
    stats_.idleSeconds += since(t0);
    if (!s.ok())
      return absl::Status(
          s.code(),
          absl::StrCat("receiving ", name, " from ",
                       who(&from == actIn_.get() ? stage_ - 1 : stage_ + 1),
                       ": ", s.message()));
  }
  return got;
}

absl::Status PipelineDriver::send(Channel &to, Outputs &outs,
                                  const std::vector<std::string> &names,
                                  int mb) {
  for (const std::string &name : names) {
    auto it = outs.find(name);
    if (it == outs.end())
      return absl::InternalError(
          absl::StrCat("the program returned no '", name, "'"));
    if (absl::Status s = to.post(uint32_t(mb), std::move(it->second)); !s.ok())
      return absl::Status(
          s.code(),
          absl::StrCat("sending to ",
                       who(&to == actOut_.get() ? stage_ + 1 : stage_ - 1),
                       ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status PipelineDriver::drainSends() {
  const auto t0 = Clock::now();
  for (Channel *c : {actOut_.get(), gradOut_.get()})
    if (c)
      if (absl::Status s = c->drain(); !s.ok()) {
        stats_.idleSeconds += since(t0);
        return absl::Status(
            s.code(),
            absl::StrCat("sending to ",
                         who(c == actOut_.get() ? stage_ + 1 : stage_ - 1),
                         ": ", s.message()));
      }
  stats_.idleSeconds += since(t0);
  return absl::OkStatus();
}

absl::Status PipelineDriver::diagnose(absl::Status s,
                                      const std::string &where) {
  broken_ = true;
  std::string msg = absl::StrCat(who(stage_), ": ", where, ": ", s.message());
  // A lost peer (Unavailable) or a silent one (DeadlineExceeded) is already
  // named, and a local error is our own. Aborted means a neighbour shut down
  // or gave up, maybe because of a rank further along the chain: close our
  // links (so our other neighbours stop waiting on us too) and ask the
  // whole world, whose failure report names a rank that died wherever it
  // was.
  if (s.code() == absl::StatusCode::kAborted) {
    actIn_.reset();
    gradIn_.reset();
    actOut_.reset();
    gradOut_.reset();
    absl::Status w = world_ ? world_->barrier() : absl::OkStatus();
    absl::StrAppend(
        &msg, w.ok() ? "; every rank of the world is still up: "
                       "the cause is in another rank's output"
                     : absl::StrCat("; checking the world: ", w.message()));
  }
  return absl::Status(s.code(), msg);
}

absl::StatusOr<double> PipelineDriver::trainStep(const io::Batch &batch,
                                                 uint64_t seed, int64_t step) {
  if (broken_)
    return absl::FailedPreconditionError(absl::StrCat(
        who(stage_), ": an earlier step failed; restart the ranks"));
  const int64_t B = ex_.plan().model().batch_size();
  if (batch.size != B)
    return absl::InvalidArgumentError(
        absl::StrCat("trainStep got a batch of ", batch.size,
                     " rows; the plan's batch has ", B));
  const int m = int(sizes_.size());
  const bool last = stage_ + 1 == stages_;
  if (!ex_.hasProgram("update") ||
      !ex_.hasProgram(programName("train_fwd", sizes_[0])))
    return absl::FailedPreconditionError(
        "the plan has no train_fwd / train_bwd / update programs (it was "
        "compiled for inference)");
  std::vector<std::string> inNames, gradNames, outNames, dgradNames;
  for (const std::string &k : inKeys_) {
    inNames.push_back("pp.in." + k);
    dgradNames.push_back("pp.dgrad." + k);
  }
  for (const std::string &k : outKeys_) {
    outNames.push_back("pp.out." + k);
    gradNames.push_back("pp.grad." + k);
  }
  ++stats_.steps;
  std::vector<io::Batch> mbs(m);
  std::vector<double> losses(m, 0.0);
  int inUse = 0;
  for (const plan::PipeOp &op :
       plan::stageSchedule(schedule_, stage_, stages_, m)) {
    const int i = op.microbatch;
    const int64_t n = sizes_[i];
    const int slot = plan::slotOf(i, slots_);
    if (op.forward)
      mbs[i] = sliceBatch(batch, offsets_[i], n);
    const KernelContext ctx{seed, step, true, offsets_[i], B};
    const std::string where =
        absl::StrCat("step ", step, ", ", op.forward ? "forward" : "backward",
                     " of microbatch ", i);
    const std::string program =
        programName(op.forward ? "train_fwd" : "train_bwd", n);
    Channel *from = op.forward ? actIn_.get() : gradIn_.get();
    std::map<std::string, std::vector<float>> extra;
    if (from) {
      auto got = receive(*from, program, op.forward ? inNames : gradNames, i);
      if (!got.ok())
        return diagnose(got.status(), where);
      extra = std::move(*got);
    }
    ex_.setExtraInputs(std::move(extra));
    auto outs = runTimed(program, mbs[i], ctx, slot);
    if (!outs.ok())
      return diagnose(outs.status(), where);
    if (op.forward) {
      stats_.peakSlots = std::max(stats_.peakSlots, ++inUse);
      if (last) {
        const std::vector<float> &l = (*outs)["loss"];
        if (l.empty())
          return diagnose(absl::InternalError(program + " returned no loss"),
                          where);
        losses[i] = l[0];
      }
    } else {
      --inUse;
      mbs[i] = io::Batch(); // done with it
    }
    Channel *to = op.forward ? actOut_.get() : gradOut_.get();
    if (to)
      if (absl::Status s =
              send(*to, *outs, op.forward ? outNames : dgradNames, i);
          !s.ok())
        return diagnose(s, where);
  }
  if (absl::Status s = drainSends(); !s.ok())
    return diagnose(s, absl::StrCat("step ", step, ", last sends"));
  if (auto u =
          runTimed("update", io::Batch(), KernelContext{seed, step, true}, 0);
      !u.ok())
    return diagnose(u.status(), absl::StrCat("step ", step, ", update"));
  // The step's loss is the serial mean: Σ (n_i / B)·loss_i over the last
  // stage's microbatches; one rank contributes it to a world sum so every
  // rank returns it.
  float loss = 0;
  if (last && groupRank_ == 0) {
    double sum = 0;
    for (int i = 0; i < m; ++i)
      sum += double(sizes_[i]) / double(B) * losses[i];
    loss = float(sum);
  }
  const auto t0 = Clock::now();
  absl::Status s = world_ ? world_->allReduceSum(&loss, 1) : absl::OkStatus();
  stats_.idleSeconds += since(t0);
  if (!s.ok())
    return diagnose(s, absl::StrCat("step ", step, ", summing the loss"));
  return double(loss);
}

absl::StatusOr<PipelineEval> PipelineDriver::evalBatch(const io::Batch &batch,
                                                       uint64_t seed) {
  if (broken_)
    return absl::FailedPreconditionError(absl::StrCat(
        who(stage_), ": an earlier step failed; restart the ranks"));
  const plan::ModelInfo &model = ex_.plan().model();
  const int64_t B = model.batch_size(), C = model.num_classes();
  if (batch.size != B)
    return absl::InvalidArgumentError(
        absl::StrCat("evalBatch got a batch of ", batch.size,
                     " rows; the plan's batch has ", B));
  if (!ex_.hasProgram(programName("eval_step", sizes_[0])))
    return absl::FailedPreconditionError(
        absl::StrCat("the plan has no ", programName("eval_step", sizes_[0]),
                     " program (it was compiled without evaluation)"));
  std::vector<std::string> inNames, outNames;
  for (const std::string &k : inKeys_)
    inNames.push_back("pp.in." + k);
  for (const std::string &k : outKeys_)
    outNames.push_back("pp.out." + k);
  const bool last = stage_ + 1 == stages_;
  PipelineEval result;
  for (int i = 0; i < int(sizes_.size()); ++i) {
    const int64_t n = sizes_[i];
    const std::string program = programName("eval_step", n);
    const std::string where = absl::StrCat("evaluation, microbatch ", i);
    std::map<std::string, std::vector<float>> extra;
    if (actIn_) {
      auto got = receive(*actIn_, program, inNames, i);
      if (!got.ok())
        return diagnose(got.status(), where);
      extra = std::move(*got);
    }
    ex_.setExtraInputs(std::move(extra));
    // No backward follows, so every microbatch can use slot 0.
    auto outs =
        runTimed(program, sliceBatch(batch, offsets_[i], n),
                 KernelContext{seed, 0, /*training=*/false, offsets_[i], B}, 0);
    if (!outs.ok())
      return diagnose(outs.status(), where);
    if (actOut_) {
      if (absl::Status s = send(*actOut_, *outs, outNames, i); !s.ok())
        return diagnose(s, where);
    } else if (last) {
      const std::vector<float> &lg = (*outs)["logits"];
      if (int64_t(lg.size()) != n * C)
        return diagnose(
            absl::InvalidArgumentError(absl::StrCat(
                program, " returned ", lg.size(), " logits; a microbatch of ",
                n, " rows of ", C, " classes needs ", n * C)),
            where);
      result.logits.insert(result.logits.end(), lg.begin(), lg.end());
      auto l = outs->find("loss");
      if (l != outs->end() && !l->second.empty())
        result.loss += double(n) / double(B) * l->second[0];
    }
  }
  if (absl::Status s = drainSends(); !s.ok())
    return diagnose(s, "evaluation, last sends");
  // The last stage's leader hands the result to world rank 0.
  const int lastLeader = (stages_ - 1) * groupSize_;
  const int me = world_ ? world_->rank() : 0;
  if (lastLeader == 0)
    return me == 0 ? result : PipelineEval();
  std::vector<float> msg(1 + B * C);
  if (me == lastLeader) {
    msg[0] = float(result.loss);
    std::copy(result.logits.begin(), result.logits.end(), msg.begin() + 1);
    if (absl::Status s = world_->send(msg.data(), msg.size(), 0, kEvalTag);
        !s.ok())
      return diagnose(s, "evaluation, sending the logits to world rank 0");
    return PipelineEval();
  }
  if (me != 0)
    return PipelineEval();
  if (absl::Status s =
          world_->recv(msg.data(), msg.size(), lastLeader, kEvalTag);
      !s.ok())
    return diagnose(s, absl::StrCat("evaluation, receiving the logits from ",
                                    who(stages_ - 1)));
  result.loss = msg[0];
  result.logits.assign(msg.begin() + 1, msg.end());
  return result;
}

absl::Status PipelineDriver::saveParams(const std::string &path) {
  absl::StatusOr<Executor::GatheredParams> g = ex_.gatherParams();
  if (!g.ok())
    return g.status();
  const int me = world_ ? world_->rank() : 0;
  const bool leader = groupRank_ == 0;
  auto numel = [](const std::vector<int64_t> &shape) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  };
  // Stage leaders ship (name, shape, data) to world rank 0: a header of
  // int32 [count, then per tensor: name length, rank, dims..., name bytes],
  // then each tensor's floats.
  if (leader && me != 0) {
    std::vector<int32_t> header = {int32_t(g->tensors.size())};
    for (const io::TensorToWrite &t : g->tensors) {
      header.push_back(int32_t(t.name.size()));
      header.push_back(int32_t(t.shape.size()));
      for (int64_t d : t.shape) {
        if (d > INT32_MAX)
          return absl::UnimplementedError(
              absl::StrCat("parameter ", t.name, " has a dimension of ", d,
                           ", too large to ship to world rank 0"));
        header.push_back(int32_t(d));
      }
      header.insert(header.end(), t.name.begin(), t.name.end());
    }
    int32_t n = int32_t(header.size());
    absl::Status s = world_->send(&n, 1, 0, kSaveTag);
    if (s.ok())
      s = world_->send(header.data(), header.size(), 0, kSaveTag);
    for (size_t i = 0; s.ok() && i < g->tensors.size(); ++i)
      s = world_->send(static_cast<const float *>(g->tensors[i].data),
                       numel(g->tensors[i].shape), 0, kSaveTag);
    if (!s.ok())
      return absl::Status(
          s.code(), absl::StrCat(who(stage_),
                                 ": sending the parameters to world rank 0: ",
                                 s.message()));
    return absl::OkStatus();
  }
  if (me != 0)
    return absl::OkStatus();
  std::vector<io::TensorToWrite> all = g->tensors;
  std::map<std::string, std::vector<int64_t>> seen;
  for (const io::TensorToWrite &t : all)
    seen[t.name] = t.shape;
  std::deque<std::vector<float>> storage; // stable addresses for `all`
  for (int s = 1; s < stages_; ++s) {
    const int from = s * groupSize_;
    auto failed = [&](const absl::Status &st) {
      return absl::Status(
          st.code(),
          absl::StrCat("world rank 0: receiving the parameters of ", "stage ",
                       s, " (world rank ", from, "): ", st.message()));
    };
    int32_t n = 0;
    if (absl::Status st = world_->recv(&n, 1, from, kSaveTag); !st.ok())
      return failed(st);
    std::vector<int32_t> header(std::max(n, 0));
    if (absl::Status st =
            world_->recv(header.data(), header.size(), from, kSaveTag);
        !st.ok())
      return failed(st);
    size_t at = 0;
    auto next = [&]() -> absl::StatusOr<int32_t> {
      if (at >= header.size())
        return absl::DataLossError(
            absl::StrCat("stage ", s, "'s parameter list is truncated (",
                         header.size(), " entries)"));
      return header[at++];
    };
    auto count = next();
    if (!count.ok())
      return count.status();
    for (int32_t t = 0; t < *count; ++t) {
      auto len = next(), rank = next();
      if (!len.ok() || !rank.ok())
        return len.ok() ? rank.status() : len.status();
      std::vector<int64_t> shape;
      for (int32_t d = 0; d < *rank; ++d) {
        auto v = next();
        if (!v.ok())
          return v.status();
        shape.push_back(*v);
      }
      std::string name;
      for (int32_t c = 0; c < *len; ++c) {
        auto v = next();
        if (!v.ok())
          return v.status();
        name.push_back(char(*v));
      }
      std::vector<float> &data = storage.emplace_back(numel(shape));
      if (absl::Status st =
              world_->recv(data.data(), data.size(), from, kSaveTag);
          !st.ok())
        return failed(st);
      // A parameter held by two stages (tied weights) is written once.
      if (auto it = seen.find(name); it != seen.end()) {
        if (it->second != shape)
          return absl::FailedPreconditionError(absl::StrCat(
              "parameter ", name, " is held by two stages with shapes [",
              absl::StrJoin(it->second, ", "), "] and [",
              absl::StrJoin(shape, ", "), "]; recompile the plans"));
        continue;
      }
      seen[name] = shape;
      all.push_back({name, io::StDType::F32, shape, data.data()});
    }
  }
  return io::writeSafetensors(path, all,
                              {{"format", "pt"}, {"producer", "galaxy-run"}});
}

} // namespace galaxy::rt
