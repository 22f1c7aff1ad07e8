// galaxy-run's checkpoints: --checkpoint-dir D --checkpoint-every N
// [--keep K] save what a run needs to continue (runtime/exec/checkpoint.h)
// every N steps, after the last step and when SIGINT / SIGTERM arrives (the
// step in flight finishes, the checkpoint is written, the process exits
// 128 + the signal); --resume D continues from D's newest complete one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/exec/checkpoint.h"
#include "runtime/exec/trainer.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::rt {
class Executor;
} // namespace galaxy::rt

namespace galaxy::run {

// Consistency of the checkpoint flags with the others (exit 2), at parse.
void checkCheckpointFlags(const Args &args);

// --checkpoint-dir: an existing writable directory, or a path whose parent
// is one (created here); fails (exit 2) naming the flag otherwise. Run by
// the lead rank (and the --nproc launcher) before the first step.
void checkCheckpointDir(const Args &args);

class RunCheckpoints {
public:
  // Before anything runs, on every rank: opens --resume's checkpoint and
  // refuses (exit 2, naming the difference) one the plan, --seed,
  // --shuffle, the data or --steps cannot continue; a changed parallel
  // layout is reported by the lead and allowed.
  RunCheckpoints(const Args &args, const plan::Plan &plan,
                 const io::Dataset *train, bool lead);
  ~RunCheckpoints();
  RunCheckpoints(const RunCheckpoints &) = delete;
  RunCheckpoints &operator=(const RunCheckpoints &) = delete;

  bool resuming() const { return resuming_; }
  // The checkpoint's parameters and AdamW moments, this rank's slices (in
  // place of initWeights); the files are closed afterwards.
  void load(rt::Executor &ex);

  // Sets `o`'s firstStep (resuming) and, with --checkpoint-dir, its
  // afterStep hook (collective over `world`, the communicator of every rank;
  // null for one rank) and defers SIGINT / SIGTERM until training ends.
  void attach(rt::TrainerOptions &o, rt::StepRunner &runner,
              comm::Communicator *world);
  // Training ended: signals act at once again.
  void finish();

private:
  absl::Status afterStep(int64_t step);
  absl::Status save(int64_t step);

  const Args &args_;
  bool lead_;
  int64_t steps_ = 0; // the run's last step
  rt::CheckpointState state_;
  std::optional<rt::LoadedCheckpoint> resume_;
  rt::StepRunner *runner_ = nullptr;
  comm::Communicator *world_ = nullptr;
  bool resuming_ = false;
  bool deferring_ = false;
};

} // namespace galaxy::run
