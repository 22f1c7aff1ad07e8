// Wire format of the TCP key-value store: each request is an opcode byte and
// length-prefixed fields; each field is a u64 length (or a raw integer) in host
// byte order — every rank runs the same binary on the same kind of machine.
//
// Every connection starts with a challenge-response on the job token (the
// token itself never crosses the network):
//   server -> client  "GLXSTOR1", nonce_s (32 random bytes)
//   client -> server  "GLXJOIN1", nonce_c (32), HMAC(token, "client" nonce_s
//   nonce_c) server -> client  u8 1, HMAC(token, "server" nonce_s nonce_c)   or
//   u8 0, close
// The server reads a fixed 72 bytes under a short receive timeout before it
// reads any length field, so a stranger cannot make it allocate anything; the
// client checks the server's proof, so a rank cannot be fooled into joining
// another job's store. Without a token both sides use the empty key: the
// handshake still runs, and anyone who can connect can join (galaxy-run warns).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galaxy::comm::store_wire {

enum Op : uint8_t {
  kSet = 1,          // key, value                 -> u8 1
  kGet = 2,          // key, u64 timeout_ms         -> u8 found [, value]
  kWait = 3,         // u64 n, n keys, u64 timeout  -> u64 m, m missing keys
  kAdd = 4,          // key, i64 delta              -> i64 new value
  kOnDisconnect = 5, // key, value                  -> u8 1
  kBye = 6,          //                             -> u8 1, then close
  // u64 rank, info, facts (join_facts.h), u64 timeout_ms -> u8 1, rank 0's
  // info, rank 0's facts; or u8 0, the reason, then close. A rank's slot is
  // taken by its first accepted claim, for the life of the store.
  kClaim = 7,
  kBeat = 8,    // u64 rank -> u8 1 (the rank's heartbeat, heartbeat.h)
  kBeatAge = 9, // u64 rank -> i64 ms since its last heartbeat (-1: none)
};

// Limits a job never comes near: keys are short names, values are addresses,
// ids and the join facts. A larger announced length drops the connection
// before anything is allocated.
inline constexpr uint64_t kMaxKeyBytes = 4096;
inline constexpr uint64_t kMaxValueBytes = uint64_t(64) << 20;
inline constexpr uint64_t kMaxWaitKeys = 65536;

// Appends fields to an outgoing message.
class Writer {
public:
  void u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void u64(uint64_t v) { buf_.append(reinterpret_cast<const char *>(&v), 8); }
  void str(std::string_view s) {
    u64(s.size());
    buf_.append(s);
  }
  void raw(std::string_view s) { buf_.append(s); }
  const std::string &bytes() const { return buf_; }
  absl::Status sendTo(int fd) const;

private:
  std::string buf_;
};

// Reads fields from a socket; Unavailable when the peer closed it,
// DeadlineExceeded when the receive timeout passed.
absl::StatusOr<uint8_t> readU8(int fd);
absl::StatusOr<uint64_t> readU64(int fd);
// A length-prefixed field of at most `max` bytes (DataLoss beyond, before
// allocating); the buffer grows as bytes arrive, never to the announced
// length up front.
absl::StatusOr<std::string> readStr(int fd, uint64_t max = kMaxValueBytes);
absl::StatusOr<std::string> readRaw(int fd, size_t n);

// The server's side of the handshake on a fresh connection: PermissionDenied
// for a wrong token (the client is told), DataLoss for anything that is not
// a Galaxy client, DeadlineExceeded when it says nothing within `timeout`.
absl::Status serverHandshake(int fd, std::string_view token,
                             std::chrono::milliseconds timeout);
// The client's side; `where` ("127.0.0.1:29500") names the store in errors.
absl::Status clientHandshake(int fd, std::string_view token,
                             std::chrono::milliseconds timeout,
                             const std::string &where);

} // namespace galaxy::comm::store_wire
