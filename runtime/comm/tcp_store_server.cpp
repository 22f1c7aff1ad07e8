#include "runtime/comm/tcp_store_server.h"

#include <chrono>
#include <sys/socket.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/comm/store_protocol.h"

namespace galaxy::comm {

using namespace store_wire;

absl::StatusOr<std::unique_ptr<TcpStoreServer>>
TcpStoreServer::start(const std::string &host, int port) {
  absl::StatusOr<Fd> fd = listenOn(host, port);
  if (!fd.ok())
    return fd.status();
  absl::StatusOr<int> bound = boundPort(fd->get());
  if (!bound.ok())
    return bound.status();
  std::unique_ptr<TcpStoreServer> server(
      new TcpStoreServer(std::move(*fd), host, *bound));
  server->acceptThread_ = std::thread([s = server.get()] { s->acceptLoop(); });
  return server;
}

TcpStoreServer::TcpStoreServer(Fd listener, std::string host, int port)
    : listener_(std::move(listener)), host_(std::move(host)), port_(port) {}

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

void TcpStoreServer::acceptLoop() {
  while (true) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard<std::mutex> lock(mu_);
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
    conns_.emplace_back();
    Conn *c = &conns_.back();
    c->fd = Fd(fd);
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
  while (!bye) {
    absl::StatusOr<uint8_t> op = readU8(conn->fd.get());
    if (!op.ok())
      break;
    if (!handle(conn, *op, bye).ok())
      break;
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

absl::Status TcpStoreServer::handle(Conn *conn, uint8_t op, bool &bye) {
  const int fd = conn->fd.get();
  Writer reply;
  switch (op) {
  case kSet:
  case kOnDisconnect: {
    absl::StatusOr<std::string> key = readStr(fd);
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
    absl::StatusOr<std::string> key = readStr(fd);
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
    if (*n > (1u << 20))
      return absl::DataLossError("corrupt wait request");
    std::vector<std::string> keys;
    for (uint64_t i = 0; i < *n; ++i) {
      absl::StatusOr<std::string> key = readStr(fd);
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
    absl::StatusOr<std::string> key = readStr(fd);
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
      value += static_cast<int64_t>(*delta);
      slot = absl::StrCat(value);
    }
    changed_.notify_all();
    reply.u64(static_cast<uint64_t>(value));
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
