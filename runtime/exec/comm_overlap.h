// Collectives behind computation: the executor starts each collective of a
// host communicator on a communication thread and waits for it only before
// the first later instruction that touches its memory (reads what it writes,
// or writes what it reads or writes). Collectives run one at a time, in
// program order, on that one thread, so every rank issues them in the same
// order and the communicator never sees two operations at once (a Gloo
// context allows one outstanding collective per pair).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "runtime/backend.h"

namespace galaxy::rt {

// The bytes an instruction reads and writes (its tensors' extents).
struct MemoryAccess {
  struct Range {
    const char *lo, *hi; // [lo, hi)
  };
  std::vector<Range> reads, writes;
};
// An instruction's access from its bound input and output tensors.
MemoryAccess accessOf(const std::vector<Tensor> &in,
                      const std::vector<Tensor> &out);

// For each instruction i of a program, the latest asynchronous instruction
// (async[j], j < i) that must have finished before i runs, or -1. An
// asynchronous instruction must finish before the first later synchronous
// one that conflicts with it; since they finish in order, waiting for j
// also waits for every earlier one. The result has one more entry: what to
// wait for at the end of the program (the last asynchronous instruction).
std::vector<int> completionPoints(const std::vector<MemoryAccess> &access,
                                  const std::vector<bool> &async);

// A FIFO of jobs run one after another on one thread, started at the first
// job and joined by drain() or the destructor.
class CommThread {
public:
  CommThread() = default;
  CommThread(const CommThread &) = delete;
  CommThread &operator=(const CommThread &) = delete;
  ~CommThread();

  // Queues `job`; returns its ticket (1, 2, ... in order).
  uint64_t start(std::function<absl::Status()> job);
  // Blocks until the job with `ticket` (and so every earlier one) has
  // finished; returns the first error of any finished job. After an error
  // the remaining jobs are skipped (they report that error).
  absl::Status wait(uint64_t ticket);
  // Waits for every queued job and joins the thread.
  absl::Status drain();
  // Seconds the thread spent running jobs so far.
  double busySeconds();

private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<absl::Status()>> queue_;
  uint64_t queued_ = 0, done_ = 0;
  absl::Status error_;
  double busy_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace galaxy::rt
