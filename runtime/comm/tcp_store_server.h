// The rendezvous key-value store's server, hosted by rank 0 in background
// threads (one per client connection, so blocking waits don't stall others).
// Only the job may use it: every connection proves it knows the job token
// first (store_protocol.h), connections and field sizes are capped, and a
// rank's slot, once claimed, is never given to another process.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/comm/socket_io.h"

namespace galaxy::comm {

struct StoreServerOptions {
  std::string token; // the job token ("" = none: anyone may connect)
  // Connections past the handshake at once (the job's ranks, their heartbeats
  // and Gloo's rendezvous: a few per rank).
  int maxClients = 256;
  // Connections still in the handshake at once: strangers cannot hold more,
  // and cannot starve the ranks' slots above.
  int maxPending = 32;
  std::chrono::milliseconds handshakeTimeout{5000};
  // Where refusals are reported (never the token): stderr by default.
  std::function<void(const std::string &)> log;
};

class TcpStoreServer {
public:
  // Listens on host:port (port 0: any free port, see port()). A busy port
  // fails with a message telling the user to pick another.
  static absl::StatusOr<std::unique_ptr<TcpStoreServer>>
  start(const std::string &host, int port, StoreServerOptions options = {});
  ~TcpStoreServer(); // stops accepting, disconnects clients, joins threads

  int port() const { return port_; }
  const std::string &host() const { return host_; }

private:
  struct Conn {
    Fd fd;
    std::thread thread;
    std::string peer; // "127.0.0.1:41234", for the log
    bool done = false;
    bool authed = false;
    int rank = -1; // the rank this connection claimed
    // Keys set when this client drops without saying goodbye (e.g. its
    // process died): how other ranks learn who was lost.
    std::vector<std::pair<std::string, std::string>> onDisconnect;
  };
  struct Claim {
    std::string info, facts; // "127.0.0.1, pid 42"; encoded join facts
  };
  using Clock = std::chrono::steady_clock;

  TcpStoreServer(Fd listener, std::string host, int port,
                 StoreServerOptions options);
  void acceptLoop();
  void serve(Conn *conn);
  absl::Status handle(Conn *conn, uint8_t op, bool &bye);
  absl::Status claim(Conn *conn, bool &bye);
  void reapFinished(); // joins threads of closed connections (holds mu_)
  void log(const std::string &msg); // rate-limited (holds no lock)

  Fd listener_;
  std::string host_;
  int port_;
  StoreServerOptions opts_;
  std::thread acceptThread_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::atomic<bool> stopping_{false};
  std::map<std::string, std::string> data_;
  std::list<Conn> conns_;
  std::map<int, Claim> claims_;
  std::map<int, Clock::time_point> beats_;
  int logged_ = 0;
};

} // namespace galaxy::comm
