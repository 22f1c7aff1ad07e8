#include "runtime/exec/comm_overlap.h"

#include <chrono>

namespace galaxy::rt {

namespace {
using Range = MemoryAccess::Range;

bool overlaps(const std::vector<Range> &a, const std::vector<Range> &b) {
  for (const Range &x : a)
    for (const Range &y : b)
      if (x.lo < y.hi && y.lo < x.hi)
        return true;
  return false;
}

void add(std::vector<Range> &to, const Tensor &t) {
  const char *p = static_cast<const char *>(t.data);
  const int64_t bytes = 4 * t.numel(); // f32 and i32
  if (p && bytes > 0)
    to.push_back({p, p + bytes});
}
} // namespace

MemoryAccess accessOf(const std::vector<Tensor> &in,
                      const std::vector<Tensor> &out) {
  MemoryAccess a;
  for (const Tensor &t : in)
    add(a.reads, t);
  for (const Tensor &t : out)
    add(a.writes, t);
  return a;
}

std::vector<int> completionPoints(const std::vector<MemoryAccess> &access,
                                  const std::vector<bool> &async) {
  const int n = static_cast<int>(access.size());
  std::vector<int> waitFor(n + 1, -1);
  for (int j = 0; j < n; ++j) {
    if (!async[j])
      continue;
    int at = n;
    for (int i = j + 1; i < n && at == n; ++i)
      if (!async[i] && (overlaps(access[i].writes, access[j].reads) ||
                        overlaps(access[i].writes, access[j].writes) ||
                        overlaps(access[i].reads, access[j].writes)))
        at = i;
    waitFor[at] = std::max(waitFor[at], j);
  }
  // Collectives finish in order: the end waits for the last one.
  for (int j = n - 1; j >= 0; --j)
    if (async[j]) {
      waitFor[n] = std::max(waitFor[n], j);
      break;
    }
  return waitFor;
}

CommThread::~CommThread() { (void)drain(); }

uint64_t CommThread::start(std::function<absl::Status()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!thread_.joinable()) {
    stop_ = false;
    thread_ = std::thread([this] { loop(); });
  }
  queue_.push_back(std::move(job));
  cv_.notify_all();
  return ++queued_;
}

void CommThread::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty())
      return; // stop_ and nothing left
    std::function<absl::Status()> job = std::move(queue_.front());
    queue_.pop_front();
    const bool skip = !error_.ok();
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status s = skip ? absl::OkStatus() : job();
    const double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    lock.lock();
    busy_ += dt;
    if (error_.ok() && !s.ok())
      error_ = s;
    ++done_;
    cv_.notify_all();
  }
}

absl::Status CommThread::wait(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_ >= ticket; });
  return error_;
}

absl::Status CommThread::drain() {
  absl::Status s = wait(queued_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable())
    thread_.join();
  return s;
}

double CommThread::busySeconds() {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

} // namespace galaxy::rt
