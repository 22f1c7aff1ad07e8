// Joining a job's rendezvous store, shared by the Gloo and NCCL
// communicators: rank 0 hosts the store (with the job token and limits);
// every rank connects proving the token, claims its rank slot with the facts
// it must agree on with rank 0 (join_facts.h), registers its "dead" marker
// and starts its heartbeat.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/failure_report.h"
#include "runtime/comm/heartbeat.h"
#include "runtime/comm/join_facts.h"
#include "runtime/comm/tcp_store.h"
#include "runtime/comm/tcp_store_server.h"

namespace galaxy::comm {

struct Rendezvous {
  std::unique_ptr<TcpStoreServer> server; // rank 0 only
  std::unique_ptr<TcpStore> store;
  std::unique_ptr<Heartbeat> heartbeat; // world > 1
  std::string master;                   // "host:port", for messages
  std::string leadInfo;                 // rank 0's "127.0.0.1, pid 42"
};

// `selfInfo` is how peers will name this rank ("127.0.0.1, pid 42"). Fills
// *o.leadFacts with rank 0's facts when given.
absl::StatusOr<Rendezvous> joinRendezvous(const CommOptions &o,
                                          const std::string &selfInfo);

// Store key a world rank's "I died" marker lives under; the server sets it
// when that rank's store connection drops without a goodbye.
std::string deadKey(int worldRank);
// Store key set when a world rank shuts its communicators down on purpose.
std::string leftKey(int worldRank);
// Store key holding why a process claiming `worldRank` was refused.
std::string refusedKey(int worldRank);

// For messages about a peer described by `info` ("HOST, pid N"): when it runs
// on this host (HOST is a loopback address or `selfInfo`'s), the state of
// that pid ("is stopped (SIGSTOP or Ctrl-Z; SIGCONT resumes it)", "is
// running", "no longer exists"); "" when it cannot be told from here.
std::string localProcessState(const std::string &info,
                              const std::string &selfInfo);

// Turns peers still kSilent after a failure into kStopped (no heartbeat for
// kStaleBeat: the process exists but does not run) or kBusy (a fresh beat),
// with the heartbeat's age and, for a process on this host, its state. False
// when the store could not be asked.
bool probeHeartbeats(TcpStore &store, const std::string &selfInfo,
                     std::vector<PeerReport> &peers);

// For composeFailure's `masterStalled`: "" unless `store` was lost by
// stalling (rank 0 paused or hung), else what is known of rank 0's process.
std::string masterStalled(const TcpStore &store, const std::string &leadInfo,
                          const std::string &selfInfo);

} // namespace galaxy::comm
