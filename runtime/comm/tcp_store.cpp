#include "runtime/comm/tcp_store.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gloo/common/error.h"
#include "runtime/comm/store_protocol.h"

namespace galaxy::comm {

using namespace store_wire;

absl::StatusOr<std::unique_ptr<TcpStore>>
TcpStore::connect(const std::string &host, int port,
                  std::chrono::milliseconds timeout, const std::string &token) {
  const std::string where = absl::StrCat(host, ":", port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (bool first = true;; first = false) {
    // The first attempt gets the whole timeout (its message quotes it).
    const auto left =
        first ? timeout
              : std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
    absl::StatusOr<Fd> fd = connectWithRetry(
        host, port, std::max(left, std::chrono::milliseconds(1)));
    if (!fd.ok())
      return fd.status();
    absl::Status s =
        clientHandshake(fd->get(), token,
                        std::clamp(left, std::chrono::milliseconds(1),
                                   std::chrono::milliseconds(30000)),
                        where);
    if (s.ok())
      return std::unique_ptr<TcpStore>(
          new TcpStore(std::move(*fd), host, port, timeout));
    // Closed before greeting: the server sheds connections while many are
    // in their handshake (a flood); try again until the timeout. A refused
    // token or a stranger's port is final.
    if (s.code() != absl::StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() >= deadline)
      return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TcpStore::TcpStore(Fd fd, std::string host, int port,
                   std::chrono::milliseconds timeout)
    : fd_(std::move(fd)), host_(std::move(host)), port_(port),
      timeout_(timeout) {}

TcpStore::~TcpStore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok() || !fd_.valid())
    return;
  Writer w;
  w.u8(kBye);
  if (w.sendTo(fd_.get()).ok())
    (void)readU8(fd_.get());
}

// A frozen master must not freeze us: every reply is bounded by the
// request's own wait plus some slack.
void TcpStore::armReply(std::chrono::milliseconds wait) {
  const auto slack = std::min(timeout_, std::chrono::milliseconds(10000));
  setRecvTimeout(fd_.get(),
                 std::max(wait, std::chrono::milliseconds(0)) + slack);
}

absl::Status TcpStore::send(const Writer &w, std::chrono::milliseconds wait) {
  if (!broken_.ok())
    return broken_;
  armReply(wait);
  if (absl::Status s = w.sendTo(fd_.get()); !s.ok())
    return lost(s);
  return absl::OkStatus();
}

std::string TcpStore::address() const {
  return absl::StrCat(host_, ":", port_);
}

absl::Status TcpStore::lost(const absl::Status &cause) {
  // A receive timeout with the connection still open: rank 0's process is
  // there but does not answer (stopped or hung), which is not an exit.
  stalled_ = cause.code() == absl::StatusCode::kDeadlineExceeded;
  broken_ = absl::UnavailableError(
      stalled_ ? absl::StrFormat(
                     "the rendezvous store on rank 0 (master %s) stopped "
                     "answering (%s) though its connection is open: rank 0 "
                     "is paused or hung",
                     address(), cause.message())
               : absl::StrFormat("lost the connection to the rendezvous "
                                 "store on rank 0 (master %s): %s; rank 0 "
                                 "has probably exited",
                                 address(), cause.message()));
  fd_.reset();
  return broken_;
}

bool TcpStore::stalled() const { return stalled_; }

// One acknowledged key/value request: set, or set-when-I-disconnect.
absl::Status TcpStore::sendKeyValue(uint8_t op, const std::string &key,
                                    std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(op);
  w.str(key);
  w.str(value);
  if (absl::Status s = send(w, std::chrono::milliseconds(0)); !s.ok())
    return s;
  if (absl::StatusOr<uint8_t> ack = readU8(fd_.get()); !ack.ok())
    return lost(ack.status());
  return absl::OkStatus();
}

absl::Status TcpStore::put(const std::string &key, std::string_view value) {
  return sendKeyValue(kSet, key, value);
}

absl::Status TcpStore::setOnDisconnect(const std::string &key,
                                       std::string_view value) {
  return sendKeyValue(kOnDisconnect, key, value);
}

absl::StatusOr<std::string> TcpStore::fetch(const std::string &key,
                                            std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kGet);
  w.str(key);
  w.u64(static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0)));
  if (absl::Status s = send(w, timeout); !s.ok())
    return s;
  absl::StatusOr<uint8_t> found = readU8(fd_.get());
  if (!found.ok())
    return lost(found.status());
  if (!*found)
    return absl::DeadlineExceededError(
        absl::StrFormat("key '%s' did not appear in the store at %s within %s",
                        key, address(), formatDuration(timeout)));
  absl::StatusOr<std::string> value = readStr(fd_.get());
  if (!value.ok())
    return lost(value.status());
  return value;
}

absl::StatusOr<std::vector<std::string>>
TcpStore::missing(const std::vector<std::string> &keys,
                  std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kWait);
  w.u64(keys.size());
  for (const std::string &k : keys)
    w.str(k);
  w.u64(static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0)));
  if (absl::Status s = send(w, timeout); !s.ok())
    return s;
  absl::StatusOr<uint64_t> n = readU64(fd_.get());
  if (!n.ok())
    return lost(n.status());
  std::vector<std::string> out;
  for (uint64_t i = 0; i < *n; ++i) {
    absl::StatusOr<std::string> k = readStr(fd_.get());
    if (!k.ok())
      return lost(k.status());
    out.push_back(std::move(*k));
  }
  return out;
}

absl::StatusOr<int64_t> TcpStore::add(const std::string &key, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kAdd);
  w.str(key);
  w.u64(static_cast<uint64_t>(delta));
  if (absl::Status s = send(w, std::chrono::milliseconds(0)); !s.ok())
    return s;
  absl::StatusOr<uint64_t> v = readU64(fd_.get());
  if (!v.ok())
    return lost(v.status());
  return static_cast<int64_t>(*v);
}

absl::StatusOr<TcpStore::Lead>
TcpStore::claimRank(int rank, std::string_view info, std::string_view facts,
                    std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kClaim);
  w.u64(static_cast<uint64_t>(rank));
  w.str(info);
  w.str(facts);
  w.u64(static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0)));
  if (absl::Status s = send(w, timeout); !s.ok())
    return s;
  absl::StatusOr<uint8_t> ok = readU8(fd_.get());
  if (!ok.ok())
    return lost(ok.status());
  absl::StatusOr<std::string> first = readStr(fd_.get());
  if (!first.ok())
    return lost(first.status());
  if (!*ok) {
    broken_ = absl::FailedPreconditionError(*first);
    fd_.reset();
    return broken_;
  }
  absl::StatusOr<std::string> leadFacts = readStr(fd_.get());
  if (!leadFacts.ok())
    return lost(leadFacts.status());
  return Lead{std::move(*first), std::move(*leadFacts)};
}

absl::Status TcpStore::beat(int rank) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kBeat);
  w.u64(static_cast<uint64_t>(rank));
  if (absl::Status s = send(w, std::chrono::milliseconds(0)); !s.ok())
    return s;
  if (absl::StatusOr<uint8_t> ack = readU8(fd_.get()); !ack.ok())
    return lost(ack.status());
  return absl::OkStatus();
}

absl::StatusOr<std::chrono::milliseconds> TcpStore::beatAge(int rank) {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.u8(kBeatAge);
  w.u64(static_cast<uint64_t>(rank));
  if (absl::Status s = send(w, std::chrono::milliseconds(0)); !s.ok())
    return s;
  absl::StatusOr<uint64_t> v = readU64(fd_.get());
  if (!v.ok())
    return lost(v.status());
  return std::chrono::milliseconds(static_cast<int64_t>(*v));
}

// Gloo's Store interface reports failure by exception.
void TcpStore::set(const std::string &key, const std::vector<char> &data) {
  absl::Status s = put(key, std::string_view(data.data(), data.size()));
  if (!s.ok())
    throw gloo::IoException(std::string(s.message()));
}

std::vector<char> TcpStore::get(const std::string &key) {
  absl::StatusOr<std::string> v = fetch(key, timeout_);
  if (!v.ok())
    throw gloo::IoException(std::string(v.status().message()));
  return std::vector<char>(v->begin(), v->end());
}

void TcpStore::wait(const std::vector<std::string> &keys) {
  wait(keys, timeout_);
}

void TcpStore::wait(const std::vector<std::string> &keys,
                    const std::chrono::milliseconds &timeout) {
  absl::StatusOr<std::vector<std::string>> m = missing(keys, timeout);
  if (!m.ok())
    throw gloo::IoException(std::string(m.status().message()));
  if (!m->empty())
    throw gloo::IoException(absl::StrFormat(
        "keys [%s] did not appear in the store at %s within %s",
        absl::StrJoin(*m, ", "), address(), formatDuration(timeout)));
}

} // namespace galaxy::comm
