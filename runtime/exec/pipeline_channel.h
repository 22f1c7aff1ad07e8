// The PipelineDriver's point-to-point link to a neighbour stage, and the
// string messages of the boundary handshake. Internal to the driver's files.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/pipeline_driver.h"

namespace galaxy::rt {

// A point-to-point link to one neighbour rank over a two-member communicator.
// Outgoing links send from their own thread through a FIFO queue: a send
// blocks until the peer posts the matching receive, and in 1F1B both
// neighbours send at once (stage s its next activation, stage s+1 a
// gradient), so sending from the main thread would deadlock.
class PipelineDriver::Channel {
public:
  Channel(std::unique_ptr<comm::Communicator> comm, bool outgoing);
  ~Channel();

  comm::Communicator &comm() { return *comm_; }
  int peer() const { return peer_; }

  absl::Status recv(float *buf, size_t n, uint32_t tag) {
    return comm_->recv(buf, n, peer_, tag);
  }

  // Queues a send; returns the error of an earlier send, if one failed.
  absl::Status post(uint32_t tag, std::vector<float> data);

  // Waits until every queued send was received (or one failed).
  absl::Status drain();

private:
  struct Message {
    uint32_t tag;
    std::vector<float> data;
  };

  void loop();

  std::unique_ptr<comm::Communicator> comm_;
  int peer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool busy_ = false, stop_ = false;
  absl::Status error_;
  std::thread thread_;
};

namespace pipeline_detail {

// Strings over int32 messages: the length, then one element per byte.
absl::Status sendString(comm::Communicator &c, int peer, uint32_t tag,
                        const std::string &s);
absl::StatusOr<std::string> recvString(comm::Communicator &c, int peer,
                                       uint32_t tag);

} // namespace pipeline_detail

} // namespace galaxy::rt
