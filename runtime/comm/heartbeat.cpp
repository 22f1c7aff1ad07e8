#include "runtime/comm/heartbeat.h"

namespace galaxy::comm {

absl::StatusOr<std::unique_ptr<Heartbeat>>
Heartbeat::start(const std::string &host, int port, const std::string &token,
                 int rank, std::chrono::milliseconds timeout,
                 std::chrono::milliseconds interval) {
  absl::StatusOr<std::unique_ptr<TcpStore>> store =
      TcpStore::connect(host, port, timeout, token);
  if (!store.ok())
    return store.status();
  if (absl::Status s = (*store)->beat(rank); !s.ok())
    return s;
  return std::unique_ptr<Heartbeat>(
      new Heartbeat(std::move(*store), rank, interval));
}

Heartbeat::Heartbeat(std::unique_ptr<TcpStore> store, int rank,
                     std::chrono::milliseconds interval)
    : store_(std::move(store)), rank_(rank), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Heartbeat::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    const bool ok = store_->beat(rank_).ok();
    lock.lock();
    if (!ok)
      return;
  }
}

} // namespace galaxy::comm
