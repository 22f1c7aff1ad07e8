// Test helper: runs one function per rank in forked child processes (real
// ranks, real sockets) and collects what each reported.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"

namespace galaxy::comm::testing {

struct RankResult {
  int exitCode = -1;   // the child's exit status; -1 if killed by a signal
  std::string message; // the Status text the child's function returned
  double seconds = 0;  // when the child finished, since launch
};

// Forks `world` children; child r runs fn(r) and exits 0 on OK, 1 otherwise
// (fn may also _exit itself to simulate a crash). Children still running
// after `limit` are killed (exitCode -1, message "killed after ...").
std::vector<RankResult>
runRanks(int world, const std::function<absl::Status(int rank)> &fn,
         std::chrono::milliseconds limit = std::chrono::seconds(20));

// A loopback TCP port that was free a moment ago.
int freePort();

// Rank `rank` of `world` joining a Gloo job whose store is on loopback `port`.
absl::StatusOr<std::unique_ptr<Communicator>>
connectLoopback(int rank, int world, int port,
                std::chrono::seconds timeout = std::chrono::seconds(10));

// Renders results for a failure message.
std::string describe(const std::vector<RankResult> &results);

// The common case: `world` ranks over a fresh loopback port, fn(rank, port)
// each, and a test failure (with describe()) unless every rank returns OK.
void expectEveryRankOk(
    int world, const std::function<absl::Status(int rank, int port)> &fn);

} // namespace galaxy::comm::testing
