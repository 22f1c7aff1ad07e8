// Wire format of the TCP key-value store: each request is an opcode byte and
// length-prefixed fields; each field is a u64 length (or a raw integer) in host
// byte order — every rank runs the same binary on the same kind of machine.
#pragma once

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
};

// Appends fields to an outgoing message.
class Writer {
public:
  void u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void u64(uint64_t v) { buf_.append(reinterpret_cast<const char *>(&v), 8); }
  void str(std::string_view s) {
    u64(s.size());
    buf_.append(s);
  }
  const std::string &bytes() const { return buf_; }
  absl::Status sendTo(int fd) const;

private:
  std::string buf_;
};

// Reads fields from a socket; Unavailable when the peer closed it.
absl::StatusOr<uint8_t> readU8(int fd);
absl::StatusOr<uint64_t> readU64(int fd);
absl::StatusOr<std::string> readStr(int fd);

} // namespace galaxy::comm::store_wire
