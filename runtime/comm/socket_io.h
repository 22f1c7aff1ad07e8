// Small blocking-socket helpers shared by the TCP store's client and server.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galaxy::comm {

// Owns a file descriptor; closes it on destruction.
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd &&o) noexcept : fd_(o.release()) {}
  Fd &operator=(Fd &&o) noexcept;
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

private:
  int fd_ = -1;
};

// Writes/reads exactly n bytes (retrying on EINTR and short transfers).
// readAll returns Unavailable on EOF so callers can tell "peer went away",
// DeadlineExceeded when the receive timeout passed (the peer is silent).
absl::Status writeAll(int fd, const void *data, size_t n);
absl::Status readAll(int fd, void *data, size_t n);

// Bounds how long a blocking read on fd may wait (0 = forever).
void setRecvTimeout(int fd, std::chrono::milliseconds timeout);

// Binds and listens on host:port (port 0 picks a free one). A busy port gives
// a message that tells the user how to pick another.
absl::StatusOr<Fd> listenOn(const std::string &host, int port);

// The port a bound socket listens on.
absl::StatusOr<int> boundPort(int fd);

// Connects to host:port, retrying refused/unreachable attempts until `timeout`
// has passed (the server may not be up yet).
absl::StatusOr<Fd> connectWithRetry(const std::string &host, int port,
                                    std::chrono::milliseconds timeout);

// The local IP address this machine uses to reach host (UDP connect trick, no
// traffic sent): the address other ranks can reach us on.
absl::StatusOr<std::string> localAddressFor(const std::string &host);

// A loopback TCP port that was free a moment ago, drawn at random below
// Linux's ephemeral range (0 when none could be bound).
int freeLoopbackPort();

// "12 s" / "250 ms" for messages.
std::string formatDuration(std::chrono::milliseconds d);

} // namespace galaxy::comm
