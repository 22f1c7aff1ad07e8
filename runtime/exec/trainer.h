// The training loop of one rank: optimizer steps over a dataset's global
// batches, evaluation (loss, accuracy, logits) and saving. What runs a step is
// a StepRunner: an SPMD executor (ExecutorSteps) or a pipeline stage's driver
// (PipelineSteps); progress and metrics go to a callback the caller gives.
// galaxy-run (tools/galaxy-run) is its command line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

class Executor;
class PipelineDriver;
class TapsFile;

// How one rank runs a step. `batch` is global batch `index` of `data`
// (data.batch(index, B)); runners pass it on as it is.
class StepRunner {
public:
  virtual ~StepRunner() = default;
  // One optimizer step; `step` is 1-based (dropout, AdamW). Returns the loss,
  // the mean over the global batch.
  virtual absl::StatusOr<double> trainStep(const io::Dataset &data,
                                           int64_t index,
                                           const io::Batch &batch,
                                           uint64_t seed, int64_t step) = 0;
  // Eval mode forward: the logits [B, C], row-major; empty on a rank that
  // holds none.
  virtual absl::StatusOr<std::vector<float>> evalLogits(const io::Dataset &data,
                                                        int64_t index,
                                                        const io::Batch &batch,
                                                        uint64_t seed) = 0;
  // Forgets what was timed so far (a profile's warm-up step).
  virtual void resetTimes() = 0;
  // Collective: the global parameters written as safetensors by world rank 0.
  virtual absl::Status saveParams(const std::string &path) = 0;
  // Collective: the global parameters and AdamW moments (a checkpoint's
  // tensors, Executor::gatherParams) complete on world rank 0; other ranks
  // may get only theirs, or none.
  // `storage` keeps the gathered data the tensors point into. Unimplemented
  // by default (a runner that cannot checkpoint).
  virtual absl::StatusOr<std::vector<io::TensorToWrite>>
  gatherCheckpoint(std::vector<std::vector<float>> &storage) {
    (void)storage;
    return absl::UnimplementedError("this step runner cannot checkpoint");
  }
};

// An SPMD plan's executor: train_step / eval_step.
class ExecutorSteps : public StepRunner {
public:
  explicit ExecutorSteps(Executor &ex) : ex_(ex) {}
  // Side-only plans: the taps of the training / evaluation rows (not owned;
  // null: the plan reads none).
  void setTaps(const TapsFile *train, const TapsFile *eval) {
    trainTaps_ = train;
    evalTaps_ = eval;
  }
  // A failure reads "step K: ..." ("rank R: step K: ..." when world > 1).
  absl::StatusOr<double> trainStep(const io::Dataset &data, int64_t index,
                                   const io::Batch &batch, uint64_t seed,
                                   int64_t step) override;
  absl::StatusOr<std::vector<float>> evalLogits(const io::Dataset &data,
                                                int64_t index,
                                                const io::Batch &batch,
                                                uint64_t seed) override;
  void resetTimes() override;
  absl::Status saveParams(const std::string &path) override;
  absl::StatusOr<std::vector<io::TensorToWrite>>
  gatherCheckpoint(std::vector<std::vector<float>> &storage) override;

private:
  int64_t batchSize() const; // the plan's global batch
  Executor &ex_;
  const TapsFile *trainTaps_ = nullptr, *evalTaps_ = nullptr;
};

// A pipeline stage's driver: its schedule of microbatches; logits come back
// on world rank 0 only.
class PipelineSteps : public StepRunner {
public:
  explicit PipelineSteps(PipelineDriver &driver) : driver_(driver) {}
  absl::StatusOr<double> trainStep(const io::Dataset &data, int64_t index,
                                   const io::Batch &batch, uint64_t seed,
                                   int64_t step) override;
  absl::StatusOr<std::vector<float>> evalLogits(const io::Dataset &data,
                                                int64_t index,
                                                const io::Batch &batch,
                                                uint64_t seed) override;
  void resetTimes() override;
  absl::Status saveParams(const std::string &path) override;
  absl::StatusOr<std::vector<io::TensorToWrite>>
  gatherCheckpoint(std::vector<std::vector<float>> &storage) override;

private:
  PipelineDriver &driver_;
};

// One finished training step.
struct StepRecord {
  int64_t step = 0; // 1-based
  double loss = 0;
  double seconds = 0; // of StepRunner::trainStep
};

// An evaluation over every row of a dataset, in file order. Classification
// scores each row; a causal LM (or seq2seq) each target token (every label that
// is not io::kIgnoreIndex), all tokens of the set weighing the same.
struct EvalResult {
  int64_t rows = 0; // 0 on a rank that holds no logits
  double loss = 0;  // mean cross-entropy (NaN when nothing was scored)
  double accuracy =
      0; // share of rows (tokens) whose largest logit is the label
  std::vector<std::vector<float>> logits; // classification: per row, C each
  // Causal LM: the targets scored, exp(loss), and per row the loss of each
  // position (0 where its label is ignored).
  int64_t targets = 0;
  double perplexity = 0;
  std::vector<std::vector<float>> tokenLosses;
};

struct TrainerOptions {
  int64_t batchSize = 0;  // the plan's global batch (ModelInfo.batch_size)
  int64_t numClasses = 0; // logits per row
  // The plan's task is causal LM or seq2seq: evaluate() scores every target
  // token of the [B, S, V] logits (S: the labels' positions).
  bool causalLm = false;
  uint64_t seed = 42; // dropout (and the step's kernel context)
  // Time per step for a profile: step 1 only warms caches and GEMM plans up
  // when there are more than 2 steps, so its times are dropped.
  bool profile = false;
  bool lead = true; // world rank 0: writes the files of saveMerged
  // Called at the start of every step (1-based), before its batch is built.
  std::function<void(int64_t step)> beforeStep;
  // Steps already taken (a resumed checkpoint's): train() runs steps
  // firstStep + 1 ... on batches firstStep, ..., so the run continues as if
  // it had never stopped.
  int64_t firstStep = 0;
  // Called after every step's record went to train()'s `onStep` (collective
  // when it saves a checkpoint); an error stops training with it.
  std::function<absl::Status(int64_t step)> afterStep;
};

class Trainer {
public:
  Trainer(StepRunner &runner, TrainerOptions options)
      : runner_(runner), o_(std::move(options)) {}

  // Optimizer steps up to step `steps` on global batches 0, 1, ... of `data`
  // (wrapping around its end; from batch firstStep when resuming). Each step's
  // record goes to `onStep`. Stops at the first failing step, or at a
  // non-finite loss ("loss became nan at step K; lower the learning rate"),
  // before `onStep` sees it.
  absl::Status train(const io::Dataset &data, int64_t steps,
                     const std::function<void(const StepRecord &)> &onStep);

  // Every row of `data` once; the plan's batch is fixed, so the last partial
  // batch wraps and its extra rows are ignored.
  absl::StatusOr<EvalResult> evaluate(const io::Dataset &data);

  // Collective (every rank calls them). saveMerged folds every LoRA pair into
  // its base weight (writeMergedLora; `configJson` is the plan's) on the lead
  // rank, through a temporary unmerged save next to `path`.
  absl::Status save(const std::string &path);
  absl::Status saveMerged(const std::string &path,
                          const std::string &configJson);

  int64_t firstStep() const { return o_.firstStep; }

  // The steps a profile measured (after the warm-up) and their wall time.
  double measuredSeconds() const { return measuredS_; }
  int64_t measuredSteps() const { return measuredSteps_; }
  bool warmUpDropped() const { return warmUpDropped_; }

private:
  absl::StatusOr<EvalResult> evaluateTokens(const io::Dataset &data);

  StepRunner &runner_;
  TrainerOptions o_;
  double measuredS_ = 0;
  int64_t measuredSteps_ = 0;
  bool warmUpDropped_ = false;
};

} // namespace galaxy::rt
