#include "runtime/comm/tcp_store_server.h"

#include <arpa/inet.h>
#include <iostream>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/comm/join_facts.h"
#include "runtime/comm/store_protocol.h"

namespace galaxy::comm {

using namespace store_wire;

namespace {

constexpr int kMaxLogLines = 20;

std::string peerName(const sockaddr_storage &ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto *a = reinterpret_cast<const sockaddr_in *>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto *a = reinterpret_cast<const sockaddr_in6 *>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  return absl::StrCat(buf, ":", port);
}

} // namespace

absl::StatusOr<std::unique_ptr<TcpStoreServer>>
TcpStoreServer::start(const std::string &host, int port,
                      StoreServerOptions options) {
  absl::StatusOr<Fd> fd = listenOn(host, port);
  if (!fd.ok())
    return fd.status();
  absl::StatusOr<int> bound = boundPort(fd->get());
  if (!bound.ok())
    return bound.status();
  std::unique_ptr<TcpStoreServer> server(
      new TcpStoreServer(std::move(*fd), host, *bound, std::move(options)));
  server->acceptThread_ = std::thread([s = server.get()] { s->acceptLoop(); });
  return server;
}

TcpStoreServer::TcpStoreServer(Fd listener, std::string host, int port,
                               StoreServerOptions options)
    : listener_(std::move(listener)), host_(std::move(host)), port_(port),
      opts_(std::move(options)) {
  if (!opts_.log)
    opts_.log = [](const std::string &m) {
      std::cerr << "galaxy: rendezvous store: " << m << "\n";
    };
}

TcpStoreServer::~TcpStoreServer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (Conn &c : conns_)
      shutdown(c.fd.get(), SHUT_RDWR);
  }
  changed_.notify_all();
  shutdown(listener_.get(), SHUT_RDWR); // wakes accept()
  if (acceptThread_.joinable())
    acceptThread_.join();
  for (Conn &c : conns_)
    if (c.thread.joinable())
      c.thread.join();
}

void TcpStoreServer::log(const std::string &msg) {
  int n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = ++logged_;
  }
  if (n < kMaxLogLines)
    opts_.log(msg);
  else if (n == kMaxLogLines)
    opts_.log(absl::StrCat(msg, " (further refusals are not reported)"));
}

void TcpStoreServer::acceptLoop() {
  while (true) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = accept4(listener_.get(), reinterpret_cast<sockaddr *>(&addr), &len,
                     SOCK_CLOEXEC);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      if (fd >= 0)
        ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
        continue;
      return;
    }
    reapFinished();
    int pending = 0;
    for (const Conn &c : conns_)
      pending += !c.done && !c.authed;
    if (pending >= opts_.maxPending) {
      ::close(fd);
      lock.unlock();
      log(absl::StrFormat("dropped a connection from %s: %d connections are "
                          "already in the handshake",
                          peerName(addr), pending));
      continue;
    }
    conns_.emplace_back();
    Conn *c = &conns_.back();
    c->fd = Fd(fd);
    c->peer = peerName(addr);
    c->thread = std::thread([this, c] { serve(c); });
  }
}

void TcpStoreServer::reapFinished() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->done) {
      it->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void TcpStoreServer::serve(Conn *conn) {
  bool bye = false;
  absl::Status hs =
      serverHandshake(conn->fd.get(), opts_.token, opts_.handshakeTimeout);
  if (hs.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    int clients = 0;
    for (const Conn &c : conns_)
      clients += !c.done && c.authed;
    if (clients >= opts_.maxClients)
      hs = absl::ResourceExhaustedError(absl::StrFormat(
          "%d connections are already open (the limit)", clients));
    else
      conn->authed = true;
  }
  if (!hs.ok()) {
    if (!stopping_)
      log(absl::StrFormat("refused a connection from %s: %s", conn->peer,
                          hs.message()));
    bye = true; // nothing it set is kept
  }
  while (!bye) {
    absl::StatusOr<uint8_t> op = readU8(conn->fd.get());
    if (!op.ok())
      break;
    if (absl::Status s = handle(conn, *op, bye); !s.ok()) {
      if (s.code() == absl::StatusCode::kDataLoss && !stopping_)
        log(absl::StrFormat("dropped the connection from %s: %s", conn->peer,
                            s.message()));
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!bye && !stopping_) {
    for (auto &[k, v] : conn->onDisconnect)
      data_[k] = v;
    changed_.notify_all();
  }
  shutdown(conn->fd.get(), SHUT_RDWR);
  conn->done = true;
}

absl::Status TcpStoreServer::claim(Conn *conn, bool &bye) {
  const int fd = conn->fd.get();
  absl::StatusOr<uint64_t> rank = readU64(fd);
  if (!rank.ok())
    return rank.status();
  absl::StatusOr<std::string> info = readStr(fd, kMaxKeyBytes);
  if (!info.ok())
    return info.status();
  absl::StatusOr<std::string> facts = readStr(fd);
  if (!facts.ok())
    return facts.status();
  absl::StatusOr<uint64_t> ms = readU64(fd);
  if (!ms.ok())
    return ms.status();
  absl::StatusOr<JoinFacts> mine = decodeFacts(*facts);
  if (!mine.ok())
    return mine.status();
  if (*rank > (uint64_t(1) << 30))
    return absl::DataLossError("corrupt claim");
  const int r = static_cast<int>(*rank);

  std::unique_lock<std::mutex> lock(mu_);
  std::string refusal;
  auto taken = [&]() -> std::string {
    auto it = claims_.find(r);
    if (it == claims_.end())
      return "";
    return absl::StrFormat(
        "rank %d is already taken by %s; a second process (%s) tried to "
        "join as rank %d: is another job using this master port, or was "
        "rank %d started twice?",
        r, it->second.info, *info, r, r);
  };
  if (conn->rank >= 0) {
    refusal =
        absl::StrFormat("this connection already holds rank %d", conn->rank);
  } else if (refusal = taken(); refusal.empty() && r != 0) {
    // Compare with rank 0's facts; it hosts the store and claims at once.
    changed_.wait_for(lock, std::chrono::milliseconds(*ms),
                      [&] { return stopping_ || claims_.count(0) > 0; });
    if (stopping_ || !claims_.count(0))
      refusal = "rank 0 has not joined its own store";
    else if (refusal = taken(); refusal.empty()) {
      absl::StatusOr<JoinFacts> lead = decodeFacts(claims_[0].facts);
      std::string diff = lead.ok() ? compareFacts(*lead, *mine)
                                   : std::string("rank 0's facts are corrupt");
      if (!diff.empty())
        refusal = absl::StrFormat("rank %d (%s) does not match rank 0 (%s): %s",
                                  r, *info, claims_[0].info, diff);
    }
  }
  Writer reply;
  if (!refusal.empty()) {
    data_[absl::StrCat("refused/", r)] = refusal;
    changed_.notify_all();
    lock.unlock();
    log(absl::StrFormat("refused a rank %d from %s: %s", r, conn->peer,
                        refusal));
    reply.u8(0);
    reply.str(refusal);
    bye = true;
    return reply.sendTo(fd);
  }
  claims_[r] = {*info, *facts};
  conn->rank = r;
  data_[absl::StrCat("info/", r)] = *info;
  reply.u8(1);
  reply.str(claims_[0].info);
  reply.str(claims_[0].facts);
  changed_.notify_all();
  lock.unlock();
  return reply.sendTo(fd);
}

absl::Status TcpStoreServer::handle(Conn *conn, uint8_t op, bool &bye) {
  const int fd = conn->fd.get();
  Writer reply;
  switch (op) {
  case kSet:
  case kOnDisconnect: {
    absl::StatusOr<std::string> key = readStr(fd, kMaxKeyBytes);
    if (!key.ok())
      return key.status();
    absl::StatusOr<std::string> value = readStr(fd);
    if (!value.ok())
      return value.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (op == kSet)
        data_[*key] = std::move(*value);
      else
        conn->onDisconnect.emplace_back(std::move(*key), std::move(*value));
    }
    changed_.notify_all();
    reply.u8(1);
    break;
  }
  case kGet: {
    absl::StatusOr<std::string> key = readStr(fd, kMaxKeyBytes);
    if (!key.ok())
      return key.status();
    absl::StatusOr<uint64_t> ms = readU64(fd);
    if (!ms.ok())
      return ms.status();
    std::unique_lock<std::mutex> lock(mu_);
    bool found = changed_.wait_for(lock, std::chrono::milliseconds(*ms), [&] {
      return stopping_ || data_.count(*key) > 0;
    });
    found = found && !stopping_;
    reply.u8(found ? 1 : 0);
    if (found)
      reply.str(data_[*key]);
    break;
  }
  case kWait: {
    absl::StatusOr<uint64_t> n = readU64(fd);
    if (!n.ok())
      return n.status();
    if (*n > kMaxWaitKeys)
      return absl::DataLossError(
          absl::StrCat("a wait for ", *n, " keys (corrupt request)"));
    std::vector<std::string> keys;
    for (uint64_t i = 0; i < *n; ++i) {
      absl::StatusOr<std::string> key = readStr(fd, kMaxKeyBytes);
      if (!key.ok())
        return key.status();
      keys.push_back(std::move(*key));
    }
    absl::StatusOr<uint64_t> ms = readU64(fd);
    if (!ms.ok())
      return ms.status();
    std::unique_lock<std::mutex> lock(mu_);
    auto missing = [&] {
      std::vector<std::string> m;
      for (const std::string &k : keys)
        if (!data_.count(k))
          m.push_back(k);
      return m;
    };
    changed_.wait_for(lock, std::chrono::milliseconds(*ms),
                      [&] { return stopping_ || missing().empty(); });
    std::vector<std::string> m = missing();
    reply.u64(m.size());
    for (const std::string &k : m)
      reply.str(k);
    break;
  }
  case kAdd: {
    absl::StatusOr<std::string> key = readStr(fd, kMaxKeyBytes);
    if (!key.ok())
      return key.status();
    absl::StatusOr<uint64_t> delta = readU64(fd);
    if (!delta.ok())
      return delta.status();
    int64_t value = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::string &slot = data_[*key];
      if (!slot.empty() && !absl::SimpleAtoi(slot, &value))
        value = 0; // a non-counter value is restarted as a counter
      // Two's-complement wrap, defined (a signed overflow, which any
      // authenticated peer could provoke, would be undefined behaviour).
      value = static_cast<int64_t>(static_cast<uint64_t>(value) + *delta);
      slot = absl::StrCat(value);
    }
    changed_.notify_all();
    reply.u64(static_cast<uint64_t>(value));
    break;
  }
  case kClaim:
    return claim(conn, bye);
  case kBeat:
  case kBeatAge: {
    absl::StatusOr<uint64_t> rank = readU64(fd);
    if (!rank.ok())
      return rank.status();
    const int r = static_cast<int>(std::min<uint64_t>(*rank, 1u << 30));
    std::lock_guard<std::mutex> lock(mu_);
    if (op == kBeat) {
      beats_[r] = Clock::now();
      reply.u8(1);
    } else {
      auto it = beats_.find(r);
      reply.u64(static_cast<uint64_t>(
          it == beats_.end()
              ? int64_t(-1)
              : std::chrono::duration_cast<std::chrono::milliseconds>(
                    Clock::now() - it->second)
                    .count()));
    }
    break;
  }
  case kBye:
    bye = true;
    reply.u8(1);
    break;
  default:
    return absl::DataLossError(absl::StrCat("unknown store opcode ", op));
  }
  return reply.sendTo(fd);
}

} // namespace galaxy::comm
