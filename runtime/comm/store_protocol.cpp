#include "runtime/comm/store_protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/comm/job_token.h"
#include "runtime/comm/sha256.h"
#include "runtime/comm/socket_io.h"

namespace galaxy::comm::store_wire {
namespace {

constexpr std::string_view kServerHello = "GLXSTOR1";
constexpr std::string_view kClientHello = "GLXJOIN1";
constexpr size_t kNonce = 32, kMac = 32;

std::string proof(std::string_view token, std::string_view who,
                  std::string_view nonceS, std::string_view nonceC) {
  std::string message(who);
  message.append(nonceS).append(nonceC);
  return std::string(crypto::asBytes(crypto::hmacSha256(token, message)));
}

} // namespace

absl::Status Writer::sendTo(int fd) const {
  return writeAll(fd, buf_.data(), buf_.size());
}

absl::StatusOr<uint8_t> readU8(int fd) {
  uint8_t v = 0;
  if (absl::Status s = readAll(fd, &v, 1); !s.ok())
    return s;
  return v;
}

absl::StatusOr<uint64_t> readU64(int fd) {
  uint64_t v = 0;
  if (absl::Status s = readAll(fd, &v, 8); !s.ok())
    return s;
  return v;
}

absl::StatusOr<std::string> readRaw(int fd, size_t n) {
  std::string s(n, '\0');
  if (absl::Status st = readAll(fd, s.data(), n); !st.ok())
    return st;
  return s;
}

absl::StatusOr<std::string> readStr(int fd, uint64_t max) {
  absl::StatusOr<uint64_t> n = readU64(fd);
  if (!n.ok())
    return n.status();
  if (*n > max)
    return absl::DataLossError(absl::StrCat(
        "store message field of ", *n, " bytes exceeds the limit of ", max,
        " (a corrupt stream, or not a Galaxy rank)"));
  // Grow with what arrives: a peer that announces 64 MiB and sends nothing
  // costs nothing.
  constexpr size_t kChunk = size_t(1) << 20;
  std::string s;
  while (s.size() < *n) {
    const size_t take = std::min<uint64_t>(kChunk, *n - s.size());
    const size_t at = s.size();
    s.resize(at + take);
    if (absl::Status st = readAll(fd, s.data() + at, take); !st.ok())
      return st;
  }
  return s;
}

absl::Status serverHandshake(int fd, std::string_view token,
                             std::chrono::milliseconds timeout) {
  absl::StatusOr<std::string> nonceS = randomBytes(kNonce);
  if (!nonceS.ok())
    return nonceS.status();
  Writer hello;
  hello.raw(kServerHello);
  hello.raw(*nonceS);
  if (absl::Status s = hello.sendTo(fd); !s.ok())
    return s;
  setRecvTimeout(fd, timeout);
  absl::StatusOr<std::string> got =
      readRaw(fd, kClientHello.size() + kNonce + kMac);
  if (!got.ok())
    return got.status();
  if (got->compare(0, kClientHello.size(), kClientHello) != 0)
    return absl::DataLossError("not a Galaxy rank (wrong greeting)");
  const std::string_view nonceC =
      std::string_view(*got).substr(kClientHello.size(), kNonce);
  const std::string_view mac =
      std::string_view(*got).substr(kClientHello.size() + kNonce);
  Writer verdict;
  if (!crypto::constantTimeEqual(mac,
                                 proof(token, "client", *nonceS, nonceC))) {
    verdict.u8(0);
    (void)verdict.sendTo(fd);
    return absl::PermissionDeniedError("wrong job token");
  }
  verdict.u8(1);
  verdict.raw(proof(token, "server", *nonceS, nonceC));
  if (absl::Status s = verdict.sendTo(fd); !s.ok())
    return s;
  setRecvTimeout(fd, std::chrono::milliseconds(0)); // ranks idle between calls
  return absl::OkStatus();
}

absl::Status clientHandshake(int fd, std::string_view token,
                             std::chrono::milliseconds timeout,
                             const std::string &where) {
  setRecvTimeout(fd, timeout);
  absl::StatusOr<std::string> hello = readRaw(fd, kServerHello.size() + kNonce);
  if (!hello.ok())
    return absl::UnavailableError(absl::StrFormat(
        "%s did not greet like a Galaxy rendezvous store (%s); is another "
        "program listening on the master port?",
        where, hello.status().message()));
  if (hello->compare(0, kServerHello.size(), kServerHello) != 0)
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not a Galaxy rendezvous store (is another program listening "
        "on the master port?)",
        where));
  const std::string nonceS = hello->substr(kServerHello.size());
  absl::StatusOr<std::string> nonceC = randomBytes(kNonce);
  if (!nonceC.ok())
    return nonceC.status();
  Writer w;
  w.raw(kClientHello);
  w.raw(*nonceC);
  w.raw(proof(token, "client", nonceS, *nonceC));
  if (absl::Status s = w.sendTo(fd); !s.ok())
    return s;
  absl::StatusOr<uint8_t> verdict = readU8(fd);
  if (!verdict.ok() || *verdict != 1)
    return absl::PermissionDeniedError(absl::StrFormat(
        "the rendezvous store at %s refused this rank's job token: give every "
        "rank of the job the same token (GALAXY_JOB_TOKEN or "
        "--job-token-file), or none to all; is %s another job's master?",
        where, where));
  absl::StatusOr<std::string> mac = readRaw(fd, kMac);
  if (!mac.ok())
    return mac.status();
  if (!crypto::constantTimeEqual(*mac, proof(token, "server", nonceS, *nonceC)))
    return absl::PermissionDeniedError(absl::StrFormat(
        "the rendezvous store at %s does not know this job's token (another "
        "job's master on that port?)",
        where));
  return absl::OkStatus();
}

} // namespace galaxy::comm::store_wire
