// What galaxy-run's SPMD path (galaxy-run.cpp) and pipeline path
// (run_pipeline.cpp) share: the parsed command line, failing, reading plans
// and inputs, the Trainer's options, progress lines and evaluation reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/launch.h"
#include "runtime/exec/peft_adapter.h"
#include "runtime/exec/sampling.h"
#include "runtime/exec/trainer.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {
class Executor;
} // namespace galaxy::rt

namespace galaxy::run {

struct Args {
  std::string plan, data, vocab, tokenizer, eval, evalOut, init, save, metrics;
  std::string saveMerged, dumpTaps, taps, evalTaps;
  std::string saveAdapter, initAdapter; // PEFT adapter folders
  std::string generate, output;         // prompts in, generations out
  std::vector<std::string> prompts;     // --prompt texts (--tokenizer)
  std::string predict;                  // --predict: rows to classify
  int64_t maxNewTokens = 16, eosId = -1;
  // --temperature, --top-k, --top-p; its seed is --seed's.
  rt::SamplingOptions sampling;
  std::string profileJson, profileStatic, profileSvg;
  bool profile = false;
  std::string backend = "cpu";
  int64_t steps = -1, epochs = -1, logEvery = 0, nproc = 0;
  uint64_t seed = 42;
  bool shuffle = false;
  double timeoutS = 60;
  // --checkpoint-dir, --checkpoint-every, --keep, --resume (checkpoints.h).
  std::string checkpointDir, resume;
  int64_t checkpointEvery = 0, keep = 0;
  std::string jobTokenFile; // --job-token-file (else GALAXY_JOB_TOKEN)
  rt::LaunchFlags launch;
  std::vector<std::string> childArgs; // the command line minus --nproc
};

// Thrown by fail() and caught in main, so the communicator's destructor still
// runs (it tells the peers this rank left and, on rank 0, keeps the store up
// while they diagnose a failure).
struct Exit {
  int code;
};

[[noreturn]] void fail(int code, const std::string &msg);

// galaxy-run's command line, read flag by flag: "--name value" or
// "--name=value"; the training and --calibrate parsers share it.
class FlagReader {
public:
  FlagReader(int argc, char **argv) : args_(argv + 1, argv + argc) {}
  // Moves to the next argument; false past the last.
  bool next();
  const std::string &arg() const { return args_[first_]; } // as given
  const std::string &flag() const { return flag_; }        // without "=value"
  // The flag's value: after '=' or the next argument (consumed then);
  // fail(2) naming the flag when there is none.
  std::string value();
  // Appends the arguments this flag took (itself and a separate value) to
  // `out`: what the launcher passes on to the ranks.
  void passOn(std::vector<std::string> &out) const;

private:
  std::vector<std::string> args_;
  size_t first_ = 0, last_ = 0;
  bool started_ = false, hasValue_ = false;
  std::string flag_, value_;
};

// --timeout's range, seconds: its milliseconds must fit the communicator's
// int64 clock; a week is past any join or collective worth waiting for.
constexpr double kMinTimeoutS = 0.001, kMaxTimeoutS = 7 * 24 * 3600;

// PLAN_DIR/rank<rank>.plan.pb (or the file itself), checked for the format
// version before anything reads its contents; `file` gets the path.
absl::StatusOr<plan::Plan> readPlan(const std::string &where, int rank,
                                    std::string *file);

// Ranks the plan runs on: every stage's group for a pipeline plan.
int planWorldSize(const plan::Plan &plan);

std::string hms(double s);
int64_t envInt(const char *name, int64_t otherwise);

// The inputs of a run, all validated before anything is written.
struct RunInputs {
  std::optional<io::Dataset> train, eval;
  std::optional<io::Dataset> predict; // labels optional (--predict)
  std::optional<io::SafetensorsFile> init;
  // --save-adapter / --init-adapter: the LoRA plan as PEFT sees it, and the
  // adapter folder checked against it.
  std::optional<rt::PeftPlanInfo> peft;
  std::optional<rt::PeftAdapter> adapter;
  std::ofstream metrics; // open on the lead rank when --metrics is given
};
RunInputs loadInputs(const Args &args, const plan::Plan &plan, bool lead);

// The starting weights: --init-adapter over --init, --init, or the seeded
// initialisation; the files are closed afterwards (their pages would count
// for the whole run). Fails (exit 2) on a tensor missing or misshapen.
void initWeights(rt::Executor &ex, RunInputs &inputs, const Args &args);

// Steps of a training run: --steps, else --epochs (default one) over the
// training rows.
int64_t trainingSteps(const Args &args, int64_t batchSize, int64_t rows);

// The Trainer's options for this run on world rank `rank`: the plan's batch
// and classes, --seed, --profile, and the test hooks of --help
// (GALAXY_TEST_DIE_AT_STEP / GALAXY_TEST_HANG_AT_STEP on rank
// GALAXY_TEST_FAULT_RANK) before every step.
rt::TrainerOptions trainerOptions(const Args &args,
                                  const plan::ModelInfo &model, int rank);

// The progress lines ("step k/N  loss ...") on the lead rank and --metrics.
class StepLog {
public:
  // Prints the "training N steps" line on the lead rank; `rows` of --data;
  // `firstStep` steps were taken before (a resumed checkpoint's).
  StepLog(const Args &args, int64_t steps, int64_t batchSize, int64_t rows,
          bool lead, std::ofstream &metrics, int64_t firstStep = 0);
  void record(const rt::StepRecord &step);

private:
  int64_t steps_, batch_, logEvery_, firstStep_;
  bool lead_;
  std::ofstream &metrics_;
  std::chrono::steady_clock::time_point t0_;
  double windowLoss_ = 0;
  int64_t windowSteps_ = 0;
};

// --data: trains the steps of --steps / --epochs with progress lines and
// --metrics; fails (exit 1) when a step does.
void trainWithLog(rt::Trainer &trainer, const Args &args,
                  const plan::ModelInfo &model, const io::Dataset &train,
                  bool lead, std::ofstream &metrics);

// --save, --save-merged and --save-adapter (collective; `peft` is set when
// --save-adapter is), each announced by the lead rank.
void saveWeights(rt::Trainer &trainer, const Args &args, const plan::Plan &plan,
                 const std::optional<rt::PeftPlanInfo> &peft, bool lead);

// --generate / --prompt: greedy or sampled generation of --max-new-tokens
// per prompt, written by the lead rank to --output (--prompt: the decoded
// texts on stdout); fails (exit 1) when a step does. Prompt plus new tokens
// must fit the KV cache (galaxyc --max-seq). With
// `ex` (an SPMD plan's executor) holding prefill/decode, they generate (unless
// GALAXY_GENERATE_RECOMPUTE=1 asks for the eval_step baseline).
void generateWithReport(rt::StepRunner &runner, rt::Executor *ex,
                        const Args &args, const plan::ModelInfo &model,
                        bool lead);

// --eval: every row of `data`, then the "eval:" line and --eval-out (on the
// lead rank); fails (exit 1) when a batch does.
void evaluateWithReport(rt::Trainer &trainer, const Args &args,
                        const io::Dataset &data, bool lead);

} // namespace galaxy::run
