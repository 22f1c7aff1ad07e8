// Test helper: runs a program as a child process with extra environment,
// capturing stdout and stderr together, with a time limit.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace galaxy::rt::testing {

struct ProcResult {
  int exitCode = -1;     // -1: killed by a signal (or by the limit)
  int signal = 0;        // the signal that ended it, when one did
  bool timedOut = false; // killed because it ran past the limit
  double seconds = 0;
  std::string output; // stdout and stderr, interleaved
};

class Subprocess {
public:
  // Starts argv[0] with argv; `env` entries are "NAME=VALUE" added to ours.
  Subprocess(const std::vector<std::string> &argv,
             const std::vector<std::string> &env = {});
  Subprocess(const Subprocess &) = delete;
  ~Subprocess(); // kills the child if still running
  // Waits up to `limit`, then kills it.
  ProcResult wait(std::chrono::milliseconds limit = std::chrono::seconds(30));
  void kill();
  // Sends `sig` to the child (still running: wait() reaps it).
  void signal(int sig);

private:
  pid_t pid_ = -1;
  std::string outPath_;
  std::chrono::steady_clock::time_point start_;
};

// Runs to completion (or the limit).
ProcResult run(const std::vector<std::string> &argv,
               const std::vector<std::string> &env = {},
               std::chrono::milliseconds limit = std::chrono::seconds(30));

} // namespace galaxy::rt::testing
