#include "runtime/exec/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/lora_merge.h"
#include "runtime/exec/pipeline_driver.h"
#include "runtime/exec/taps.h"
#include "runtime/io/temp_file.h"

namespace galaxy::rt {

absl::StatusOr<double> ExecutorSteps::trainStep(const io::Dataset &data,
                                                int64_t index,
                                                const io::Batch &batch,
                                                uint64_t seed, int64_t step) {
  if (trainTaps_)
    ex_.setExtraInputs(trainTaps_->batch(data, index, batchSize()));
  auto out = ex_.run("train_step", batch, KernelContext{seed, step, true});
  if (!out.ok()) {
    const int rank = ex_.plan().rank(), world = std::max(ex_.plan().world(), 1);
    return absl::Status(
        out.status().code(),
        absl::StrCat(world > 1 ? absl::StrCat("rank ", rank, ": ") : "",
                     "step ", step, ": ", out.status().message()));
  }
  return double((*out)["loss"][0]);
}

absl::StatusOr<std::vector<float>>
ExecutorSteps::evalLogits(const io::Dataset &data, int64_t index,
                          const io::Batch &batch, uint64_t seed) {
  if (evalTaps_)
    ex_.setExtraInputs(evalTaps_->batch(data, index, batchSize()));
  auto out =
      ex_.run("eval_step", batch, KernelContext{seed, 0, /*training=*/false});
  if (!out.ok())
    return out.status();
  return std::move((*out)["logits"]);
}

int64_t ExecutorSteps::batchSize() const {
  return ex_.plan().model().batch_size();
}

void ExecutorSteps::resetTimes() { ex_.resetInstrTimes(); }

absl::Status ExecutorSteps::saveParams(const std::string &path) {
  return ex_.saveParams(path);
}

absl::StatusOr<std::vector<io::TensorToWrite>>
ExecutorSteps::gatherCheckpoint(std::vector<std::vector<float>> &storage) {
  auto g = ex_.gatherParams(/*withOptState=*/true);
  if (!g.ok())
    return g.status();
  storage = std::move(g->owned); // the data stays where the tensors point
  return std::move(g->tensors);
}

absl::StatusOr<double> PipelineSteps::trainStep(const io::Dataset &, int64_t,
                                                const io::Batch &batch,
                                                uint64_t seed, int64_t step) {
  return driver_.trainStep(batch, seed, step);
}

absl::StatusOr<std::vector<float>>
PipelineSteps::evalLogits(const io::Dataset &, int64_t, const io::Batch &batch,
                          uint64_t seed) {
  auto out = driver_.evalBatch(batch, seed);
  if (!out.ok())
    return out.status();
  return std::move(out->logits);
}

void PipelineSteps::resetTimes() { driver_.resetStats(); }

absl::Status PipelineSteps::saveParams(const std::string &path) {
  return driver_.saveParams(path);
}

absl::StatusOr<std::vector<io::TensorToWrite>>
PipelineSteps::gatherCheckpoint(std::vector<std::vector<float>> &storage) {
  auto g = driver_.gatherToLead(/*withOptState=*/true);
  if (!g.ok())
    return g.status();
  storage = std::move(g->owned);
  return std::move(g->tensors);
}

namespace {

// Cross-entropy and accuracy of each row's logits.
class EvalTally {
public:
  explicit EvalTally(int64_t classes) : classes_(classes) {}
  void add(const float *logits, int32_t label) {
    const int64_t C = classes_;
    double mx = logits[0];
    int64_t arg = 0;
    for (int64_t c = 1; c < C; ++c)
      if (logits[c] > mx) {
        mx = logits[c];
        arg = c;
      }
    double sum = 0;
    for (int64_t c = 0; c < C; ++c)
      sum += std::exp(logits[c] - mx);
    loss_ += std::log(sum) + mx - logits[label];
    correct_ += arg == label;
    logits_.emplace_back(logits, logits + C);
  }
  EvalResult result() && {
    EvalResult r;
    r.rows = int64_t(logits_.size());
    r.loss = loss_ / r.rows;
    r.accuracy = double(correct_) / r.rows;
    r.logits = std::move(logits_);
    return r;
  }

private:
  int64_t classes_;
  double loss_ = 0;
  int64_t correct_ = 0;
  std::vector<std::vector<float>> logits_;
};

// Token-level cross-entropy and accuracy of causal-LM logits [B, S, V].
class TokenTally {
public:
  // Row `r` of a batch: S positions of `logits`, V each, against `labels`.
  void add(const float *logits, const int32_t *labels, int64_t S, int64_t V) {
    std::vector<float> losses(S, 0.0f);
    for (int64_t s = 0; s < S; ++s) {
      const int32_t label = labels[s];
      if (label == io::kIgnoreIndex)
        continue;
      const float *l = logits + s * V;
      double mx = l[0];
      int64_t arg = 0;
      for (int64_t v = 1; v < V; ++v)
        if (l[v] > mx) {
          mx = l[v];
          arg = v;
        }
      double sum = 0;
      for (int64_t v = 0; v < V; ++v)
        sum += std::exp(l[v] - mx);
      const double loss = std::log(sum) + mx - l[label];
      losses[s] = float(loss);
      loss_ += loss;
      correct_ += arg == label;
      ++targets_;
    }
    tokenLosses_.push_back(std::move(losses));
  }
  EvalResult result() && {
    EvalResult r;
    r.rows = int64_t(tokenLosses_.size());
    r.targets = targets_;
    r.loss = loss_ / double(targets_);
    r.perplexity = std::exp(r.loss);
    r.accuracy = double(correct_) / double(targets_);
    r.tokenLosses = std::move(tokenLosses_);
    return r;
  }

private:
  double loss_ = 0;
  int64_t correct_ = 0, targets_ = 0;
  std::vector<std::vector<float>> tokenLosses_;
};

} // namespace

absl::Status
Trainer::train(const io::Dataset &data, int64_t steps,
               const std::function<void(const StepRecord &)> &onStep) {
  const int64_t B = o_.batchSize;
  for (int64_t s = o_.firstStep; s < steps; ++s) {
    if (o_.beforeStep)
      o_.beforeStep(s + 1);
    io::Batch batch = data.batch(s, B);
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<double> loss =
        runner_.trainStep(data, s, batch, o_.seed, s + 1);
    if (!loss.ok())
      return loss.status();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (o_.profile && s == o_.firstStep && steps - o_.firstStep > 2) {
      runner_.resetTimes(); // step 1 warms caches and GEMM plans up
      warmUpDropped_ = true;
    } else {
      measuredS_ += seconds;
      ++measuredSteps_;
    }
    if (!std::isfinite(*loss))
      return absl::FailedPreconditionError(absl::StrFormat(
          "loss became %f at step %d; lower the learning rate", *loss, s + 1));
    if (onStep)
      onStep(StepRecord{s + 1, *loss, seconds});
    if (o_.afterStep)
      if (absl::Status st = o_.afterStep(s + 1); !st.ok())
        return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> Trainer::evaluate(const io::Dataset &data) {
  const int64_t B = o_.batchSize, C = o_.numClasses, N = data.size();
  if (o_.causalLm)
    return evaluateTokens(data);
  EvalTally tally(C);
  for (int64_t start = 0; start < N; start += B) {
    const int64_t index = start / B;
    io::Batch batch = data.batch(index, B);
    absl::StatusOr<std::vector<float>> logits =
        runner_.evalLogits(data, index, batch, o_.seed);
    if (!logits.ok())
      return logits.status();
    if (logits->empty())
      continue; // this rank holds none (a pipeline rank other than 0)
    // The one batch field the trainer reads.
    const std::vector<int32_t> &labels = batch.ints("labels");
    for (int64_t r = 0; r < B && start + r < N; ++r)
      tally.add(&(*logits)[r * C], labels[r]);
  }
  return std::move(tally).result();
}

absl::StatusOr<EvalResult> Trainer::evaluateTokens(const io::Dataset &data) {
  const int64_t B = o_.batchSize, N = data.size();
  TokenTally tally;
  for (int64_t start = 0; start < N; start += B) {
    const int64_t index = start / B;
    io::Batch batch = data.batch(index, B);
    // Positions scored per row: the labels' (seq2seq: target_pad_size).
    const int64_t S = int64_t(batch.ints("labels").size()) / B;
    absl::StatusOr<std::vector<float>> logits =
        runner_.evalLogits(data, index, batch, o_.seed);
    if (!logits.ok())
      return logits.status();
    if (logits->empty())
      continue; // this rank holds none (a pipeline rank other than 0)
    if (int64_t(logits->size()) % (B * S) != 0)
      return absl::InternalError(
          absl::StrFormat("eval_step returned %d logits, not [%d, %d, V]",
                          logits->size(), B, S));
    const int64_t V = int64_t(logits->size()) / (B * S);
    // Rows past the end wrapped around to the first ones: scored once only.
    const std::vector<int32_t> &labels = batch.ints("labels");
    for (int64_t r = 0; r < B && start + r < N; ++r)
      tally.add(&(*logits)[r * S * V], &labels[r * S], S, V);
  }
  return std::move(tally).result();
}

absl::Status Trainer::save(const std::string &path) {
  return runner_.saveParams(path);
}

absl::Status Trainer::saveMerged(const std::string &path,
                                 const std::string &configJson) {
  // Gather like save(), then fold on the lead rank.
  const std::string unmerged = path + ".unmerged.tmp";
  // Only the lead rank writes (and removes) it: another rank on the same
  // filesystem must not remove the file the lead is still folding.
  std::optional<io::TempFileGuard> guard;
  if (o_.lead)
    guard.emplace(unmerged);
  if (absl::Status s = runner_.saveParams(unmerged); !s.ok())
    return s;
  if (!o_.lead)
    return absl::OkStatus();
  return writeMergedLora(unmerged, configJson, path); // guard removes it
}

} // namespace galaxy::rt
