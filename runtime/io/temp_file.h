// Temporary files that must not outlive the write they serve: an atomic save
// writes a temporary next to its target and renames it over the target; if
// the write fails, or SIGINT / SIGTERM arrives during it, the temporary is
// removed rather than left behind (a hidden file as big as the checkpoint).
#pragma once

#include <string>

namespace galaxy::io {

// Guards `path` from construction until release() (after the rename) or
// destruction (removes the file). While any guard is alive, SIGINT and
// SIGTERM first remove every guarded file, then take the effect they had
// before (default: the process ends by that signal). Signals the process
// ignores stay ignored. Up to 16 guards at a time; more are guarded on the
// failure path only.
class TempFileGuard {
public:
  explicit TempFileGuard(std::string path);
  ~TempFileGuard();
  TempFileGuard(const TempFileGuard &) = delete;
  TempFileGuard &operator=(const TempFileGuard &) = delete;

  // The file was renamed into place (or handed on): do not remove it.
  void release();

private:
  std::string path_;
  int slot_ = -1;
  bool released_ = false;
};

// A graceful stop (galaxy-run --checkpoint-dir): while deferral is on, the
// first SIGINT or SIGTERM is only recorded (stopSignal() returns it), so the
// run can finish its step, save a checkpoint and exit. Signals within 2 s of
// the first are the same request (a terminal's or job manager's signal to
// every process of a job, and a launcher forwarding it); a later one acts as
// without deferral (guarded temporaries removed, then the earlier action).
// Calls nest: each deferStopSignals(true) needs its deferStopSignals(false).
void deferStopSignals(bool on);
// The first SIGINT / SIGTERM deferred so far; 0 when none arrived.
int stopSignal();

// Test hook: when set, called with a temporary's path once writeSafetensors
// has created it and written its header (galaxy-run's
// GALAXY_TEST_PAUSE_IN_SAVE pauses there so a test can signal it).
void setTempFileHookForTesting(void (*hook)(const std::string &path));
void runTempFileHookForTesting(const std::string &path);

} // namespace galaxy::io
