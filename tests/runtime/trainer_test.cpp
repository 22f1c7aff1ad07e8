// rt::Trainer through its API: the loop over a scripted StepRunner (steps,
// records, hooks, warm-up, failures, evaluation), then the tiny serial plan
// trained for real through ExecutorSteps.
#include "runtime/exec/trainer.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "runtime/backend.h"
#include "runtime/exec/executor.h"
#include "runtime/io/safetensors.h"
#include "tests/runtime/tiny_plans.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

namespace fs = std::filesystem;

// Returns the scripted losses in turn and logits that put all weight on
// class `guess`; records what the trainer asked for.
class ScriptedSteps : public StepRunner {
public:
  std::vector<double> losses;
  int64_t guess = 0, classes = kTinyClasses;
  bool holdsLogits = true;
  absl::Status failAt = absl::OkStatus();
  int64_t failStep = -1;
  std::vector<int64_t> indices, stepsSeen;
  int resets = 0;
  std::vector<std::string> saved;

  absl::StatusOr<double> trainStep(const io::Dataset &, int64_t index,
                                   const io::Batch &, uint64_t,
                                   int64_t step) override {
    indices.push_back(index);
    stepsSeen.push_back(step);
    if (step == failStep)
      return failAt;
    return losses.at(step - 1);
  }
  absl::StatusOr<std::vector<float>> evalLogits(const io::Dataset &, int64_t,
                                                const io::Batch &,
                                                uint64_t) override {
    if (!holdsLogits)
      return std::vector<float>{};
    std::vector<float> l(kTinyBatch * classes, 0.f);
    for (int64_t r = 0; r < kTinyBatch; ++r)
      l[r * classes + guess] = 10.f;
    return l;
  }
  void resetTimes() override { ++resets; }
  absl::Status saveParams(const std::string &path) override {
    saved.push_back(path);
    return absl::OkStatus();
  }
};

class TrainerTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("trainer-test-", getpid(), "-", rand()))
               .string();
    fs::create_directories(dir_);
    ASSERT_TRUE(writeTinyData(path("train.jsonl"), kRows));
    io::DatasetOptions o;
    o.padSize = kTinySeq;
    o.numClasses = kTinyClasses;
    o.vocabSize = kTinyVocab;
    auto d = io::Dataset::load(path("train.jsonl"), o);
    ASSERT_TRUE(d.ok()) << d.status();
    data_ = std::move(*d);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  TrainerOptions options() const {
    TrainerOptions o;
    o.batchSize = kTinyBatch;
    o.numClasses = kTinyClasses;
    o.seed = 5;
    return o;
  }

  static constexpr int kRows = 14; // not a multiple of the batch
  std::string dir_;
  std::optional<io::Dataset> data_;
};

TEST_F(TrainerTest, EveryStepIsRecordedInOrder) {
  ScriptedSteps steps;
  steps.losses = {2.0, 1.5, 1.25, 1.0};
  TrainerOptions o = options();
  std::vector<int64_t> before;
  o.beforeStep = [&](int64_t s) { before.push_back(s); };
  Trainer trainer(steps, o);
  std::vector<StepRecord> records;
  ASSERT_TRUE(
      trainer
          .train(*data_, 4, [&](const StepRecord &r) { records.push_back(r); })
          .ok());
  ASSERT_EQ(records.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(records[i].step, i + 1);
    EXPECT_EQ(records[i].loss, steps.losses[i]);
    EXPECT_GE(records[i].seconds, 0);
  }
  EXPECT_EQ(before, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(steps.indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(steps.resets, 0); // no profile
  EXPECT_EQ(trainer.measuredSteps(), 4);
}

TEST_F(TrainerTest, ProfileDropsTheWarmUpStepOnlyWhenMoreThanTwo) {
  ScriptedSteps steps;
  steps.losses = {1, 1, 1};
  TrainerOptions o = options();
  o.profile = true;
  Trainer three(steps, o);
  ASSERT_TRUE(three.train(*data_, 3, nullptr).ok());
  EXPECT_EQ(steps.resets, 1);
  EXPECT_TRUE(three.warmUpDropped());
  EXPECT_EQ(three.measuredSteps(), 2);

  ScriptedSteps two;
  two.losses = {1, 1};
  Trainer short_(two, o);
  ASSERT_TRUE(short_.train(*data_, 2, nullptr).ok());
  EXPECT_EQ(two.resets, 0);
  EXPECT_FALSE(short_.warmUpDropped());
  EXPECT_EQ(short_.measuredSteps(), 2);
}

TEST_F(TrainerTest, NonFiniteLossStopsBeforeTheRecord) {
  ScriptedSteps steps;
  steps.losses = {1.0, std::numeric_limits<double>::quiet_NaN(), 0.5};
  Trainer trainer(steps, options());
  int records = 0;
  absl::Status s =
      trainer.train(*data_, 3, [&](const StepRecord &) { ++records; });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "loss became nan at step 2; lower the learning rate");
  EXPECT_EQ(records, 1);
  EXPECT_EQ(steps.stepsSeen.size(), 2u);
}

TEST_F(TrainerTest, AFailingStepIsReturnedAsItIs) {
  ScriptedSteps steps;
  steps.losses = {1, 1, 1};
  steps.failStep = 2;
  steps.failAt = absl::UnavailableError("rank 1 is gone");
  Trainer trainer(steps, options());
  absl::Status s = trainer.train(*data_, 3, nullptr);
  EXPECT_EQ(s, absl::UnavailableError("rank 1 is gone"));
}

TEST_F(TrainerTest, EvaluationCoversEveryRowOnce) {
  ScriptedSteps steps;
  steps.guess = 1;
  Trainer trainer(steps, options());
  absl::StatusOr<EvalResult> r = trainer.evaluate(*data_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, kRows);
  ASSERT_EQ(r->logits.size(), size_t(kRows));
  EXPECT_EQ(r->logits[0].size(), size_t(kTinyClasses));
  int64_t ones = 0;
  for (int64_t i = 0; i < kRows; ++i)
    ones += data_->row(i).label == 1;
  EXPECT_DOUBLE_EQ(r->accuracy, double(ones) / kRows);
  // Right rows cost log(1 + 2e-10), wrong ones about 10.
  EXPECT_NEAR(r->loss, 10.0 * (kRows - ones) / kRows, 1e-3);

  steps.holdsLogits = false; // e.g. a pipeline rank other than 0
  r = trainer.evaluate(*data_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows, 0);
}

TEST_F(TrainerTest, SaveMergedWritesOnlyOnTheLead) {
  ScriptedSteps steps;
  TrainerOptions o = options();
  o.lead = false;
  Trainer trainer(steps, o);
  ASSERT_TRUE(trainer.saveMerged(path("merged.st"), "{}").ok());
  EXPECT_EQ(steps.saved,
            (std::vector<std::string>{path("merged.st.unmerged.tmp")}));
  EXPECT_FALSE(fs::exists(path("merged.st")));
}

// The tiny serial plan (tests/runtime/tiny_plans.h) trained for real.
TEST_F(TrainerTest, TinySerialPlanTrainsEvaluatesAndSaves) {
  std::unique_ptr<Backend> backend = makeCpuBackend();
  auto ex = Executor::create(tinyDataParallelPlan(0, {kTinyBatch}), *backend);
  ASSERT_TRUE(ex.ok()) << ex.status();
  (*ex)->initParams(5);
  ExecutorSteps steps(**ex);
  Trainer trainer(steps, options());

  auto before = trainer.evaluate(*data_);
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<double> losses;
  ASSERT_TRUE(trainer
                  .train(*data_, 30,
                         [&](const StepRecord &r) { losses.push_back(r.loss); })
                  .ok());
  ASSERT_EQ(losses.size(), 30u);
  for (double l : losses)
    EXPECT_TRUE(std::isfinite(l) && l > 0);
  auto after = trainer.evaluate(*data_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->rows, kRows);
  EXPECT_LT(after->loss, before->loss - 0.01) << "the tiny model did not train";

  ASSERT_TRUE(trainer.save(path("w.safetensors")).ok());
  auto saved = io::readSafetensors(path("w.safetensors"));
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_NE(saved->find("classifier.weight"), nullptr);
}

} // namespace
} // namespace galaxy::rt::testing
