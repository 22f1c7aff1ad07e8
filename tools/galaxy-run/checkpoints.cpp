#include "tools/galaxy-run/checkpoints.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/exec/executor.h"
#include "runtime/io/temp_file.h"
#include "runtime/io/tensor_source.h"

namespace fs = std::filesystem;

namespace galaxy::run {
namespace {

// "galaxy over 2 ranks", "pipeline of 2 stages over 2 ranks": for reports.
std::string layoutOf(const plan::Plan &plan) {
  nlohmann::json cfg =
      nlohmann::json::parse(plan.config_json(), nullptr, false);
  std::string mode = "serial";
  if (cfg.is_object() && cfg.contains("parallel_mode") &&
      cfg["parallel_mode"].is_string())
    mode = cfg["parallel_mode"].get<std::string>();
  const int world = planWorldSize(plan);
  const int stages = plan.pipeline().num_stages();
  return absl::StrCat(mode,
                      stages > 0
                          ? absl::StrCat(" (", stages, " pipeline stages)")
                          : std::string(),
                      " over ", world, world == 1 ? " rank" : " ranks");
}

// Test hooks (galaxy-run --help): a SIGTERM raised by one rank at the start
// of a step, and a lead that stops forever inside one checkpoint's write.
int64_t signalAtStep() { return envInt("GALAXY_TEST_SIGNAL_AT_STEP", -1); }
int64_t pauseInCheckpoint() {
  return envInt("GALAXY_TEST_PAUSE_IN_CHECKPOINT", -1);
}
// A rank that waits after step K (up to 30 s) for a stop signal from outside,
// so a test's SIGTERM lands mid-run however fast the steps are.
int64_t waitSignalAfterStep() {
  return envInt("GALAXY_TEST_WAIT_SIGNAL_AFTER_STEP", -1);
}

} // namespace

void checkCheckpointFlags(const Args &args) {
  const bool dir = !args.checkpointDir.empty();
  if (args.checkpointEvery > 0 && !dir)
    fail(2, "--checkpoint-every needs --checkpoint-dir DIR");
  if (args.keep > 0 && !dir)
    fail(2, "--keep needs --checkpoint-dir DIR");
  if ((dir || !args.resume.empty()) && args.data.empty())
    fail(2, absl::StrCat(dir ? "--checkpoint-dir" : "--resume",
                         " is for training: give --data"));
  if (!args.resume.empty() && (!args.init.empty() || !args.initAdapter.empty()))
    fail(2, "--resume takes the weights from the checkpoint: drop --init and "
            "--init-adapter");
}

void checkCheckpointDir(const Args &args) {
  if (args.checkpointDir.empty())
    return;
  const std::string &dir = args.checkpointDir;
  const std::string what = "--checkpoint-dir " + dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      fail(2, absl::StrCat(what, " is not a directory; give the folder the "
                                 "step-N checkpoints go into"));
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      fail(2,
           absl::StrCat(what, " is not writable (", std::strerror(errno), ")"));
    return;
  }
  if (errno != ENOENT)
    fail(2, absl::StrCat(what, ": cannot check it: ", std::strerror(errno)));
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec)
    fail(2, absl::StrCat(
                what, " does not exist and cannot be created: ", ec.message()));
}

RunCheckpoints::RunCheckpoints(const Args &args, const plan::Plan &plan,
                               const io::Dataset *train, bool lead)
    : args_(args), lead_(lead) {
  if (args.checkpointDir.empty() && args.resume.empty())
    return;
  const int64_t B = plan.model().batch_size();
  steps_ = train ? trainingSteps(args, B, train->size()) : 0;
  state_.seed = args.seed;
  state_.shuffle = args.shuffle;
  state_.dataPath = args.data;
  state_.dataRows = train ? train->size() : 0;
  state_.batchSize = B;
  state_.configJson = plan.config_json();
  state_.layout = layoutOf(plan);
  if (args.resume.empty())
    return;
  auto c = rt::openCheckpoint(args.resume);
  if (!c.ok())
    fail(2, std::string(c.status().message()));
  const rt::CheckpointState &saved = c->state;
  const std::string from = absl::StrCat("--resume ", c->path, ": ");
  std::vector<std::string> layout;
  if (absl::Status s = rt::compareCheckpointConfig(saved.configJson,
                                                   plan.config_json(), &layout);
      !s.ok())
    fail(2, from + std::string(s.message()));
  if (saved.seed != args.seed)
    fail(2, absl::StrCat(from, "--seed ", args.seed,
                         " differs from the checkpoint's ", saved.seed,
                         " (dropout masks and shuffling follow it): resume "
                         "with --seed ",
                         saved.seed));
  if (saved.shuffle != args.shuffle)
    fail(2, absl::StrCat(from, "the checkpoint's run ",
                         saved.shuffle ? "shuffled" : "did not shuffle",
                         " its data: resume ",
                         saved.shuffle ? "with" : "without", " --shuffle"));
  if (saved.dataRows != state_.dataRows)
    fail(2, absl::StrCat(from, "the checkpoint's run trained on ",
                         saved.dataRows, " rows of ", saved.dataPath,
                         ", --data ", args.data, " holds ", state_.dataRows,
                         ": its data position means nothing here; resume "
                         "with the same data"));
  if (saved.step > steps_)
    fail(2, absl::StrCat(from, "the checkpoint is at step ", saved.step,
                         " but this run ends at step ", steps_,
                         ": give --steps ", saved.step, " or more"));
  if (lead) {
    std::cerr << "galaxy-run: resuming from " << c->path << " (step "
              << saved.step << " of " << steps_ << ")\n";
    if (saved.dataPath != args.data)
      std::cerr << "galaxy-run: warning: the checkpoint's run read "
                << saved.dataPath << ", this one reads " << args.data
                << " (same row count: continuing)\n";
    if (!layout.empty())
      std::cerr << "galaxy-run: resharding: the checkpoint was taken under "
                << saved.layout << ", this run is " << state_.layout << " ("
                << absl::StrJoin(layout, ", ") << ")\n";
  }
  resume_ = std::move(*c);
  resuming_ = true;
}

RunCheckpoints::~RunCheckpoints() { finish(); }

void RunCheckpoints::load(rt::Executor &ex) {
  if (absl::Status s = ex.loadParams(io::TensorSource(resume_->model)); !s.ok())
    fail(2, absl::StrCat("--resume ", resume_->path, ": ", s.message()));
  if (absl::Status s = ex.loadOptState(io::TensorSource(resume_->optimizer));
      !s.ok())
    fail(2, absl::StrCat("--resume ", resume_->path,
                         ": optimizer state: ", s.message()));
  state_.step = resume_->state.step;
  resume_.reset(); // unmap the files
}

void RunCheckpoints::attach(rt::TrainerOptions &o, rt::StepRunner &runner,
                            comm::Communicator *world) {
  o.firstStep = state_.step;
  if (args_.checkpointDir.empty())
    return;
  runner_ = &runner;
  world_ = world;
  o.afterStep = [this](int64_t step) { return afterStep(step); };
  const int64_t signalAt = signalAtStep();
  const int world1 = world ? world->size() : 1;
  const int64_t signalRank = envInt("GALAXY_TEST_FAULT_RANK", world1 - 1);
  if (signalAt > 0 && (world ? world->rank() : 0) == signalRank) {
    auto before = std::move(o.beforeStep);
    o.beforeStep = [before, signalAt](int64_t step) {
      if (before)
        before(step);
      if (step == signalAt)
        ::raise(SIGTERM); // test hook: as if the user stopped the run
    };
  }
  io::deferStopSignals(true);
  deferring_ = true;
}

void RunCheckpoints::finish() {
  if (deferring_)
    io::deferStopSignals(false);
  deferring_ = false;
}

absl::Status RunCheckpoints::afterStep(int64_t step) {
  // Every rank stops after the same step: the signal may have reached only
  // some of them.
  if (waitSignalAfterStep() == step)
    for (int i = 0; i < 3000 && io::stopSignal() == 0; ++i)
      usleep(10000);
  int sig = io::stopSignal();
  if (world_ && world_->size() > 1) {
    int32_t flags[2] = {sig == SIGTERM, sig == SIGINT};
    if (absl::Status s = world_->allReduceSum(flags, 2); !s.ok())
      return s;
    sig = flags[0] ? SIGTERM : flags[1] ? SIGINT : 0;
  }
  const int64_t every = args_.checkpointEvery;
  if (sig || step == steps_ || (every > 0 && step % every == 0))
    if (absl::Status s = save(step); !s.ok())
      return s;
  if (!sig)
    return absl::OkStatus();
  if (lead_)
    std::cerr << "galaxy-run: " << strsignal(sig) << ": stopped after step "
              << step << "; continue with --resume " << args_.checkpointDir
              << "\n";
  // Signals stay deferred while the process leaves: a launcher repeating
  // its SIGTERM must not turn this exit into a death by signal.
  deferring_ = false;
  throw Exit{128 + sig};
}

absl::Status RunCheckpoints::save(int64_t step) {
  std::vector<std::vector<float>> storage;
  auto tensors = runner_->gatherCheckpoint(storage);
  if (!tensors.ok())
    return tensors.status();
  int32_t failed = 0;
  absl::Status written;
  if (lead_) {
    rt::CheckpointState state = state_;
    state.step = step;
    std::function<void()> hook;
    if (pauseInCheckpoint() == step)
      hook = [step] {
        std::cerr << "galaxy-run: test hook: paused writing the checkpoint of "
                     "step "
                  << step << std::endl;
        while (true)
          pause(); // until SIGKILL
      };
    auto path = rt::writeCheckpoint(args_.checkpointDir, state, *tensors,
                                    args_.keep, hook);
    if (path.ok())
      std::cerr << "galaxy-run: checkpoint of step " << step << " in " << *path
                << "\n";
    written = path.status();
    failed = !written.ok();
  }
  // Also a barrier: no rank leaves (on a signal) before the lead wrote.
  if (world_ && world_->size() > 1)
    if (absl::Status s = world_->allReduceSum(&failed, 1); !s.ok())
      return s;
  if (!written.ok())
    return written;
  if (failed)
    return absl::InternalError(
        absl::StrCat("rank 0 could not write the checkpoint of step ", step));
  return absl::OkStatus();
}

} // namespace galaxy::run
