// The rendezvous key-value store's server, hosted by rank 0 in background
// threads (one per client connection, so blocking waits don't stall others).
#pragma once

#include <condition_variable>
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

class TcpStoreServer {
public:
  // Listens on host:port (port 0: any free port, see port()). A busy port
  // fails with a message telling the user to pick another.
  static absl::StatusOr<std::unique_ptr<TcpStoreServer>>
  start(const std::string &host, int port);
  ~TcpStoreServer(); // stops accepting, disconnects clients, joins threads

  int port() const { return port_; }
  const std::string &host() const { return host_; }

private:
  struct Conn {
    Fd fd;
    std::thread thread;
    bool done = false;
    // Keys set when this client drops without saying goodbye (e.g. its
    // process died): how other ranks learn who was lost.
    std::vector<std::pair<std::string, std::string>> onDisconnect;
  };

  TcpStoreServer(Fd listener, std::string host, int port);
  void acceptLoop();
  void serve(Conn *conn);
  absl::Status handle(Conn *conn, uint8_t op, bool &bye);
  void reapFinished(); // joins threads of closed connections (holds mu_)

  Fd listener_;
  std::string host_;
  int port_;
  std::thread acceptThread_;

  std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;
  std::map<std::string, std::string> data_;
  std::list<Conn> conns_;
};

} // namespace galaxy::comm
