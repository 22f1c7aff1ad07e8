// A rank's heartbeat: a thread that, on its own store connection, records a
// beat every `interval`. A rank whose collective times out asks the store how
// long ago each silent peer last beat: a fresh beat means the peer is alive
// but busy elsewhere (hung in compute, another collective); an old one, with
// its store connection still open, means the whole process stopped (SIGSTOP,
// a debugger, swapped out) — which a dead rank (connection closed) is not.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "runtime/comm/tcp_store.h"

namespace galaxy::comm {

// Beats are this often; a peer is "not responding" after kStaleBeat without.
inline constexpr std::chrono::milliseconds kBeatInterval{1000};
inline constexpr std::chrono::milliseconds kStaleBeat{3000};

class Heartbeat {
public:
  // Connects its own client (with the job token) and beats at once, then
  // every `interval` until destroyed. A lost store ends the beats quietly
  // (the ranks' own calls report it).
  static absl::StatusOr<std::unique_ptr<Heartbeat>>
  start(const std::string &host, int port, const std::string &token, int rank,
        std::chrono::milliseconds timeout,
        std::chrono::milliseconds interval = kBeatInterval);
  ~Heartbeat();

private:
  Heartbeat(std::unique_ptr<TcpStore> store, int rank,
            std::chrono::milliseconds interval);
  void run();

  std::unique_ptr<TcpStore> store_;
  int rank_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace galaxy::comm
