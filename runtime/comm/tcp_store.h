// Client of the rendezvous key-value store (server: tcp_store_server.h).
// Keys and values are arbitrary byte strings, so the same store carries Gloo's
// pair addresses, NCCL's unique id, and the fault-diagnosis keys.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gloo/rendezvous/store.h"
#include "runtime/comm/socket_io.h"

namespace galaxy::comm {
namespace store_wire {
class Writer;
} // namespace store_wire

class TcpStore : public gloo::rendezvous::Store {
public:
  // Connects to host:port, retrying until `timeout` (the master may start
  // later than this rank), and proves it knows the job token (""= none;
  // store_protocol.h). `timeout` is also the default for get()/wait().
  static absl::StatusOr<std::unique_ptr<TcpStore>>
  connect(const std::string &host, int port, std::chrono::milliseconds timeout,
          const std::string &token = "");
  ~TcpStore() override; // says goodbye, so no disconnect keys fire

  // --- absl::Status API ---
  absl::Status put(const std::string &key, std::string_view value);
  // Waits up to `timeout` for key; DeadlineExceeded names the key.
  absl::StatusOr<std::string> fetch(const std::string &key,
                                    std::chrono::milliseconds timeout);
  // Waits up to `timeout` for all keys; returns those still missing (empty:
  // all present). Zero timeout is a non-blocking check.
  absl::StatusOr<std::vector<std::string>>
  missing(const std::vector<std::string> &keys,
          std::chrono::milliseconds timeout);
  // Atomically adds delta to the decimal counter at key (absent = 0).
  absl::StatusOr<int64_t> add(const std::string &key, int64_t delta);
  // Asks the server to set key=value if this client's connection drops
  // without the goodbye sent by the destructor (its process died).
  absl::Status setOnDisconnect(const std::string &key, std::string_view value);

  // Takes rank's slot in the job (store_protocol.h kClaim), once per store;
  // waits up to `timeout` for rank 0 to claim first. Returns rank 0's info
  // and encoded facts; a refusal (slot taken, facts differ from rank 0's) is
  // FailedPrecondition with the server's reason, and closes the connection.
  struct Lead {
    std::string info, facts;
  };
  absl::StatusOr<Lead> claimRank(int rank, std::string_view info,
                                 std::string_view facts,
                                 std::chrono::milliseconds timeout);
  // Heartbeats (heartbeat.h): record one for `rank`; how long ago `rank`'s
  // last one arrived (-1 ms: never).
  absl::Status beat(int rank);
  absl::StatusOr<std::chrono::milliseconds> beatAge(int rank);

  // The store was lost because it stopped answering while the connection
  // stayed open (rank 0 paused or hung), not because it closed.
  bool stalled() const;

  std::string address() const;
  std::chrono::milliseconds defaultTimeout() const { return timeout_; }

  // --- gloo::rendezvous::Store (throws gloo::IoException on failure) ---
  void set(const std::string &key, const std::vector<char> &data) override;
  std::vector<char> get(const std::string &key) override;
  void wait(const std::vector<std::string> &keys) override;
  void wait(const std::vector<std::string> &keys,
            const std::chrono::milliseconds &timeout) override;

private:
  TcpStore(Fd fd, std::string host, int port,
           std::chrono::milliseconds timeout);
  // Marks the store lost on any transport error so later calls fail fast.
  absl::Status lost(const absl::Status &cause);
  absl::Status sendKeyValue(uint8_t op, const std::string &key,
                            std::string_view value);
  void armReply(std::chrono::milliseconds wait);
  // Sends a composed request with the reply bounded by `wait` plus slack;
  // the caller holds mu_. A broken store, or a failed send (which breaks
  // it), is the error.
  absl::Status send(const store_wire::Writer &w,
                    std::chrono::milliseconds wait);

  std::mutex mu_; // one request/response at a time on the socket
  Fd fd_;
  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  absl::Status broken_;
  std::atomic<bool> stalled_{false};
};

} // namespace galaxy::comm
