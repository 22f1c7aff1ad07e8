// Turns a failed collective into a message that names the rank that was lost.
// Each failing rank publishes an "abort" key before closing its connections
// (so peers it drags down can tell it is alive), and the store marks a rank
// "dead" when its process drops the store connection; a peer that is neither
// is stalled: its heartbeat (heartbeat.h) tells a stopped process (no beat)
// from a busy one (beating, but elsewhere).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace galaxy::comm {

struct PeerReport {
  // kStopped: silent, no heartbeat for kStaleBeat, store connection open;
  // kBusy: silent but its heartbeat is fresh.
  enum State { kSilent, kDead, kAborted, kLeft, kStopped, kBusy };
  int worldRank = 0;
  State state = kSilent;
  // kDead / kLeft: "127.0.0.1, pid 42"; kAborted: the reason it gave up;
  // kStopped / kBusy: the heartbeat's age (and the process state if local).
  std::string detail;
};

// True for Gloo's "Timed out waiting ..." style messages.
bool isTimeoutMessage(const std::string &raw);

// The message for a failure of `op` seen on this rank. `raw` is Gloo's error;
// `peers` are the other members' reports; storeLost means the store (hosted
// by world rank 0) could not be asked, i.e. rank 0 is gone — unless
// `masterStalled` is non-empty: the store stopped answering with its
// connection open (rank 0 paused or hung), and this says what is known of
// rank 0's process.
std::string composeFailure(const std::string &op, bool storeLost,
                           const std::string &master,
                           std::chrono::milliseconds timeout,
                           const std::string &raw,
                           const std::vector<PeerReport> &peers,
                           const std::string &masterStalled = "");

} // namespace galaxy::comm
