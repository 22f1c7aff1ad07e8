#include "runtime/exec/pipeline_channel.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace galaxy::rt {

PipelineDriver::Channel::Channel(std::unique_ptr<comm::Communicator> comm,
                                 bool outgoing)
    : comm_(std::move(comm)), peer_(1 - comm_->rank()) {
  if (outgoing)
    thread_ = std::thread([this] { loop(); });
}

PipelineDriver::Channel::~Channel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join(); // after the send in flight, if any, ends or fails
}

absl::Status PipelineDriver::Channel::post(uint32_t tag,
                                           std::vector<float> data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok())
    return error_;
  queue_.push_back({tag, std::move(data)});
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status PipelineDriver::Channel::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || !error_.ok(); });
  return error_;
}

void PipelineDriver::Channel::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_)
      return;
    Message m = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    absl::Status s = comm_->send(m.data.data(), m.data.size(), peer_, m.tag);
    lock.lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) {
      error_ = s;
      queue_.clear(); // the link is broken: nothing more can go
    }
    cv_.notify_all();
  }
}

namespace pipeline_detail {

absl::Status sendString(comm::Communicator &c, int peer, uint32_t tag,
                        const std::string &s) {
  int32_t n = int32_t(s.size());
  if (absl::Status st = c.send(&n, 1, peer, tag); !st.ok())
    return st;
  std::vector<int32_t> bytes(s.begin(), s.end());
  return c.send(bytes.data(), bytes.size(), peer, tag);
}

absl::StatusOr<std::string> recvString(comm::Communicator &c, int peer,
                                       uint32_t tag) {
  int32_t n = 0;
  if (absl::Status st = c.recv(&n, 1, peer, tag); !st.ok())
    return st;
  if (n < 0 || n > (1 << 24))
    return absl::DataLossError(
        absl::StrCat("a peer announced a message of ", n, " bytes"));
  std::vector<int32_t> bytes(n);
  if (absl::Status st = c.recv(bytes.data(), bytes.size(), peer, tag); !st.ok())
    return st;
  return std::string(bytes.begin(), bytes.end());
}

} // namespace pipeline_detail

} // namespace galaxy::rt
