#include "runtime/comm/rendezvous.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::comm {

std::string deadKey(int worldRank) { return absl::StrCat("dead/", worldRank); }
std::string leftKey(int worldRank) { return absl::StrCat("left/", worldRank); }
std::string refusedKey(int worldRank) {
  return absl::StrCat("refused/", worldRank);
}

absl::StatusOr<Rendezvous> joinRendezvous(const CommOptions &o,
                                          const std::string &selfInfo) {
  const bool alone = o.world == 1;
  const std::string host = alone ? "127.0.0.1" : o.masterHost;
  int port = alone ? 0 : o.masterPort;
  Rendezvous rv;
  if (o.rank == 0) {
    StoreServerOptions so;
    so.token = o.token;
    // Each rank holds a store client and a heartbeat client; leave room for
    // a restarted rank's and for tools, not for a flood.
    so.maxClients = 4 * o.world + 16;
    absl::StatusOr<std::unique_ptr<TcpStoreServer>> server =
        TcpStoreServer::start(host, port, std::move(so));
    if (!server.ok())
      return server.status();
    port = (*server)->port();
    rv.server = std::move(*server);
  }
  rv.master = absl::StrCat(host, ":", port);
  absl::StatusOr<std::unique_ptr<TcpStore>> store =
      TcpStore::connect(host, port, o.timeout, o.token);
  if (!store.ok())
    return store.status();
  rv.store = std::move(*store);
  absl::StatusOr<TcpStore::Lead> lead =
      rv.store->claimRank(o.rank, selfInfo, encodeFacts(o.facts), o.timeout);
  if (!lead.ok())
    return lead.status();
  rv.leadInfo = lead->info;
  if (o.leadFacts) {
    absl::StatusOr<JoinFacts> facts = decodeFacts(lead->facts);
    if (!facts.ok())
      return facts.status();
    *o.leadFacts = std::move(*facts);
  }
  if (absl::Status s = rv.store->setOnDisconnect(deadKey(o.rank), selfInfo);
      !s.ok())
    return s;
  if (!alone) {
    absl::StatusOr<std::unique_ptr<Heartbeat>> hb =
        Heartbeat::start(host, port, o.token, o.rank, o.timeout);
    if (!hb.ok())
      return hb.status();
    rv.heartbeat = std::move(*hb);
  }
  return rv;
}

std::string localProcessState(const std::string &info,
                              const std::string &selfInfo) {
  const size_t comma = info.find(',');
  const size_t pidAt = info.rfind("pid ");
  int pid = 0;
  if (comma == std::string::npos || pidAt == std::string::npos ||
      !absl::SimpleAtoi(info.substr(pidAt + 4), &pid) || pid <= 0)
    return "";
  const std::string host = info.substr(0, comma);
  const std::string selfHost = selfInfo.substr(0, selfInfo.find(','));
  if (host != selfHost && !absl::StartsWith(host, "127.") && host != "::1" &&
      host != "localhost")
    return "";
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line))
    return absl::StrFormat("(pid %d on this host no longer exists)", pid);
  // "pid (comm) S ...": the state follows the last ')'.
  const size_t close = line.rfind(')');
  const char state = close != std::string::npos && close + 2 < line.size()
                         ? line[close + 2]
                         : '?';
  if (state == 'T' || state == 't')
    return absl::StrFormat(
        "(pid %d on this host is stopped: SIGSTOP, Ctrl-Z or a debugger; "
        "SIGCONT resumes it)",
        pid);
  if (state == 'Z' || state == 'X')
    return absl::StrFormat("(pid %d on this host has exited)", pid);
  return absl::StrFormat("(pid %d on this host exists, state %c)", pid, state);
}

bool probeHeartbeats(TcpStore &store, const std::string &selfInfo,
                     std::vector<PeerReport> &peers) {
  using ms = std::chrono::milliseconds;
  for (PeerReport &p : peers) {
    if (p.state != PeerReport::kSilent)
      continue;
    absl::StatusOr<ms> age = store.beatAge(p.worldRank);
    if (!age.ok())
      return false;
    if (age->count() < 0)
      continue; // it never beat: nothing to tell
    std::string info;
    if (absl::StatusOr<std::string> v =
            store.fetch(absl::StrCat("info/", p.worldRank), ms(0));
        v.ok())
      info = *v;
    const std::string state = localProcessState(info, selfInfo);
    if (*age >= kStaleBeat)
      p = {p.worldRank, PeerReport::kStopped,
           absl::StrFormat("no heartbeat for %.1f s; its store connection is "
                           "open, so the process exists%s",
                           age->count() / 1000.0,
                           state.empty() ? "" : absl::StrCat(" ", state))};
    else
      p = {p.worldRank, PeerReport::kBusy,
           absl::StrFormat("heartbeat %.1f s ago", age->count() / 1000.0)};
  }
  return true;
}

std::string masterStalled(const TcpStore &store, const std::string &leadInfo,
                          const std::string &selfInfo) {
  if (!store.stalled())
    return "";
  std::string state = localProcessState(leadInfo, selfInfo);
  return state.empty() ? absl::StrCat("(", leadInfo, ")") : state;
}

} // namespace galaxy::comm
