#include "runtime/comm/failure_report.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/socket_io.h"

namespace galaxy::comm {
namespace {

std::string ranksPhrase(const std::vector<std::string> &parts) {
  return absl::StrCat(parts.size() == 1 ? "rank " : "ranks ",
                      absl::StrJoin(parts, ", "));
}

} // namespace

bool isTimeoutMessage(const std::string &raw) {
  return absl::StrContains(raw, "Timed out") ||
         absl::StrContains(raw, "timed out") ||
         absl::StrContains(raw, "Application timeout");
}

std::string composeFailure(const std::string &op, bool storeLost,
                           const std::string &master,
                           std::chrono::milliseconds timeout,
                           const std::string &raw,
                           const std::vector<PeerReport> &peers,
                           const std::string &masterStalled) {
  const std::string gloo = absl::StrCat(" [gloo: ", raw, "]");
  std::vector<std::string> dead, silent, left, stopped, busy;
  const PeerReport *firstAbort = nullptr;
  bool anyTimeout = isTimeoutMessage(raw);
  for (const PeerReport &p : peers) {
    if (p.state == PeerReport::kDead)
      dead.push_back(absl::StrFormat("%d (%s)", p.worldRank, p.detail));
    else if (p.state == PeerReport::kSilent)
      silent.push_back(absl::StrCat(p.worldRank));
    else if (p.state == PeerReport::kLeft)
      left.push_back(absl::StrFormat("%d (%s)", p.worldRank, p.detail));
    else if (p.state == PeerReport::kStopped)
      stopped.push_back(absl::StrFormat("%d (%s)", p.worldRank, p.detail));
    else if (p.state == PeerReport::kBusy)
      busy.push_back(absl::StrFormat("%d (%s)", p.worldRank, p.detail));
    else {
      anyTimeout = anyTimeout || isTimeoutMessage(p.detail);
      if (!firstAbort)
        firstAbort = &p;
    }
  }
  if (!dead.empty())
    return absl::StrCat(ranksPhrase(dead),
                        " exited or closed the connection during ", op, gloo);
  if (storeLost && !masterStalled.empty())
    return absl::StrCat(
        "rank 0 (master ", master, ") stopped responding during ", op,
        ": the store it hosts does not answer though its connection is open, "
        "so the process exists but is paused or hung ",
        masterStalled, gloo);
  if (storeLost)
    return absl::StrCat("rank 0 (master ", master,
                        ") exited or closed the connection during ", op,
                        " (the rendezvous store it hosts is gone)", gloo);
  if (!stopped.empty())
    return absl::StrCat(ranksPhrase(stopped), " stopped responding during ", op,
                        gloo);
  if (anyTimeout && !busy.empty())
    return absl::StrCat("timed out after ", formatDuration(timeout), " in ", op,
                        " waiting for ", ranksPhrase(busy),
                        ": alive, but busy elsewhere (stuck in compute or "
                        "in another operation?)",
                        gloo);
  if (anyTimeout) {
    std::string who = silent.empty()
                          ? std::string("a peer (every rank timed out: one "
                                        "may be stalled in another operation)")
                          : absl::StrCat(ranksPhrase(silent));
    return absl::StrCat("timed out after ", formatDuration(timeout), " in ", op,
                        " waiting for ", who, gloo);
  }
  if (firstAbort)
    return absl::StrFormat("%s failed because rank %d gave up: %s%s", op,
                           firstAbort->worldRank, firstAbort->detail, gloo);
  if (!left.empty())
    return absl::StrCat(ranksPhrase(left),
                        " shut down its communicator during ", op,
                        " (do all ranks run the same collectives?)", gloo);
  if (!silent.empty())
    return absl::StrCat(op, " failed; ", ranksPhrase(silent),
                        " did not report (stalled or unreachable)", gloo);
  return absl::StrCat(op, " failed", gloo);
}

} // namespace galaxy::comm
