#include "runtime/exec/pipeline_driver.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "runtime/exec/pipeline_channel.h"
#include "runtime/exec/pipeline_internal.h"
#include "runtime/plan/schedule.h"

// The driver's other members live in pipeline_checks.cpp (init, handshake),
// pipeline_ties.cpp (tied parameters) and pipeline_save.cpp (saveParams); the
// Channel in pipeline_channel.cpp.

namespace galaxy::rt {

using pipeline_detail::boundElements;
using pipeline_detail::kEvalTag;
using pipeline_detail::programName;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

} // namespace

io::Batch sliceBatch(const io::Batch &batch, int64_t rowBegin, int64_t rows,
                     const std::set<std::string> &whole) {
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
  for (const auto &[name, field] : batch.fields) {
    io::BatchField &f = out.fields[name];
    if (whole.count(name)) {
      f = field;
      continue;
    }
    f.isInt = field.isInt;
    if (field.isInt)
      take(field.i32, f.i32);
    else
      take(field.f32, f.f32);
  }
  return out;
}

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
      mbs[i] = sliceBatch(batch, offsets_[i], n, wholeFields_);
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
  if (absl::Status s = sumTiedGradients(); !s.ok())
    return diagnose(s,
                    absl::StrCat("step ", step,
                                 ", summing the tied parameters' gradients"));
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
  // Logits per row: the classes, a causal LM's [S, V] or a seq2seq model's
  // [T, V] (its decoder's positions).
  const int64_t B = model.batch_size(),
                C = model.task() == "causal_lm"
                        ? model.seq_len() * model.vocab_size()
                    : model.task() == "seq2seq"
                        ? model.target_seq_len() * model.vocab_size()
                        : model.num_classes();
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
        runTimed(program, sliceBatch(batch, offsets_[i], n, wholeFields_),
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
                n, " rows of ", C, " values needs ", n * C)),
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

} // namespace galaxy::rt
