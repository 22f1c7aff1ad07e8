#include "runtime/comm/socket_io.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <random>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::comm {
namespace {

using Clock = std::chrono::steady_clock;

struct AddrInfoDeleter {
  void operator()(addrinfo *p) const { freeaddrinfo(p); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

absl::StatusOr<AddrInfoPtr> resolve(const std::string &host, int port,
                                    int sockType, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = sockType;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo *res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                       &hints, &res);
  if (rc != 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot resolve host '%s': %s (check --master HOST:PORT)", host,
        gai_strerror(rc)));
  return AddrInfoPtr(res);
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// One non-blocking connect attempt bounded by `budget`; returns errno-style
// failure text on error.
absl::StatusOr<Fd> tryConnect(const addrinfo *ai,
                              std::chrono::milliseconds budget) {
  Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
               ai->ai_protocol));
  if (!fd.valid())
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return absl::UnavailableError(strerror(errno));
    pollfd p{fd.get(), POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(budget.count(), 1)));
    if (n == 0)
      return absl::UnavailableError("connect timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0)
      return absl::UnavailableError(strerror(n < 0 ? errno : err));
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  setNoDelay(fd.get());
  return fd;
}

} // namespace

Fd &Fd::operator=(Fd &&o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

absl::Status writeAll(int fd, const void *data, size_t n) {
  const char *p = static_cast<const char *>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return absl::UnavailableError(absl::StrCat("write: ", strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status readAll(int fd, void *data, size_t n) {
  char *p = static_cast<char *>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0)
      return absl::UnavailableError("connection closed by peer");
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return absl::DeadlineExceededError(
            "no reply within the receive timeout");
      return absl::UnavailableError(absl::StrCat("read: ", strerror(errno)));
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

void setRecvTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

absl::StatusOr<Fd> listenOn(const std::string &host, int port) {
  auto ai = resolve(host, port, SOCK_STREAM, /*passive=*/true);
  if (!ai.ok())
    return ai.status();
  std::string lastError = "no address";
  for (addrinfo *a = ai->get(); a; a = a->ai_next) {
    Fd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid())
      continue;
    // REUSEADDR only skips TIME_WAIT leftovers; a live listener still fails.
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno == EADDRINUSE)
        return absl::AlreadyExistsError(absl::StrFormat(
            "port %d on %s is in use; pick another with --master HOST:PORT",
            port, host));
      if (errno == EADDRNOTAVAIL)
        return absl::InvalidArgumentError(absl::StrFormat(
            "cannot listen on %s:%d: the address is not on this machine (rank "
            "0 must run on the master host given by --master HOST:PORT)",
            host, port));
      lastError = strerror(errno);
      continue;
    }
    if (listen(fd.get(), 128) != 0) {
      lastError = strerror(errno);
      continue;
    }
    return fd;
  }
  return absl::UnavailableError(
      absl::StrFormat("cannot listen on %s:%d: %s", host, port, lastError));
}

absl::StatusOr<int> boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0)
    return absl::InternalError(absl::StrCat("getsockname: ", strerror(errno)));
  if (ss.ss_family == AF_INET)
    return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
}

absl::StatusOr<Fd> connectWithRetry(const std::string &host, int port,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string lastError = "not tried";
  auto backoff = std::chrono::milliseconds(20);
  while (true) {
    auto ai = resolve(host, port, SOCK_STREAM, /*passive=*/false);
    if (!ai.ok())
      return ai.status();
    for (addrinfo *a = ai->get(); a; a = a->ai_next) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      auto fd = tryConnect(a, std::min(left, std::chrono::milliseconds(2000)));
      if (fd.ok())
        return fd;
      lastError = std::string(fd.status().message());
    }
    const auto now = Clock::now();
    if (now >= deadline)
      break;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "could not reach master %s:%d within %s (last error: %s); "
      "is rank 0 running and --master HOST:PORT right?",
      host, port, formatDuration(timeout), lastError));
}

absl::StatusOr<std::string> localAddressFor(const std::string &host) {
  auto ai = resolve(host, 9, SOCK_DGRAM, /*passive=*/false);
  if (!ai.ok())
    return ai.status();
  const addrinfo *a = ai->get();
  Fd fd(socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0)
    return absl::UnavailableError(absl::StrFormat(
        "no route to %s: %s (pass the interface to use explicitly)", host,
        strerror(errno)));
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd.get(), reinterpret_cast<sockaddr *>(&ss), &len);
  char buf[INET6_ADDRSTRLEN] = {0};
  const void *src =
      ss.ss_family == AF_INET
          ? static_cast<const void *>(
                &reinterpret_cast<sockaddr_in *>(&ss)->sin_addr)
          : static_cast<const void *>(
                &reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_addr);
  inet_ntop(ss.ss_family, src, buf, sizeof(buf));
  return std::string(buf);
}

std::string formatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0)
    return absl::StrCat(d.count() / 1000, " s");
  if (d.count() > 1000)
    return absl::StrFormat("%.1f s", d.count() / 1000.0);
  return absl::StrCat(d.count(), " ms");
}

// A random bindable port below Linux's ephemeral range (32768+): a port the
// kernel gave out for bind(0) can be given out again — to a Gloo listener or
// an outgoing connection of another local job — before rank 0's store binds
// it, and local runs start many of those.
int freeLoopbackPort() {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = pick(rng);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
      return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
    close(fd);
    if (ok)
      return port;
  }
  return 0;
}

} // namespace galaxy::comm
