#include "runtime/comm/store_protocol.h"

#include "absl/strings/str_cat.h"
#include "runtime/comm/socket_io.h"

namespace galaxy::comm::store_wire {

// Keys and values are small (addresses, ids); anything huge means a corrupt
// stream, so refuse it instead of allocating.
constexpr uint64_t kMaxField = uint64_t(1) << 30;

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

absl::StatusOr<std::string> readStr(int fd) {
  absl::StatusOr<uint64_t> n = readU64(fd);
  if (!n.ok())
    return n.status();
  if (*n > kMaxField)
    return absl::DataLossError(
        absl::StrCat("store message field of ", *n,
                     " bytes: the stream is corrupt (is another program "
                     "listening on the master port?)"));
  std::string s(*n, '\0');
  if (absl::Status st = readAll(fd, s.data(), s.size()); !st.ok())
    return st;
  return s;
}

} // namespace galaxy::comm::store_wire
