// The TCP store's wire decoding (runtime/comm/store_protocol.h readU8 /
// readU64 / readStr) on any byte stream arriving on a socket, read request
// by request as the server's grammar says (opcode, then its fields; the
// table in store_protocol.h). Only the decoding functions are used, so the
// harness does not depend on the server's internals. Properties: no crash or
// UB; re-encoding what was decoded with Writer gives back the bytes read.
#include <cstddef>
#include <cstdint>
#include <string>

#include <sys/socket.h>
#include <unistd.h>

#include "runtime/comm/socket_io.h"
#include "runtime/comm/store_protocol.h"
#include "tests/fuzz/fuzz_file.h"

using namespace galaxy::comm;
using namespace galaxy::comm::store_wire;

namespace {
// Decodes one request into `echo`; false at the end of the stream, on a
// refused field or after kBye.
bool request(int fd, Writer &echo) {
  auto str = [&] {
    absl::StatusOr<std::string> s = readStr(fd);
    if (s.ok())
      echo.str(*s);
    return s.ok();
  };
  auto u64 = [&](uint64_t *out) {
    absl::StatusOr<uint64_t> v = readU64(fd);
    if (v.ok()) {
      echo.u64(*v);
      if (out)
        *out = *v;
    }
    return v.ok();
  };
  absl::StatusOr<uint8_t> op = readU8(fd);
  if (!op.ok())
    return false;
  echo.u8(*op);
  switch (*op) {
  case kSet:
  case kOnDisconnect:
    return str() && str();
  case kGet:
  case kAdd:
    return str() && u64(nullptr);
  case kWait: {
    uint64_t n = 0;
    if (!u64(&n) || n > (1u << 20))
      return false;
    for (uint64_t i = 0; i < n; ++i)
      if (!str())
        return false;
    return u64(nullptr);
  }
  default: // kBye and unknown opcodes end the connection
    return false;
  }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A socket pair holds the whole input (libFuzzer's default -max_len is 4096,
  // far below the socket buffer), so writing before reading cannot block.
  if (size > 65536)
    return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    galaxy::fuzz::violated("socketpair failed");
  Fd reader(sv[0]), writer(sv[1]);
  if (!writeAll(writer.get(), data, size).ok())
    galaxy::fuzz::violated("writing the socket failed");
  writer.reset(); // the peer closes: reads past the input see EOF
  Writer echo;
  while (request(reader.get(), echo)) {
  }
  const std::string &got = echo.bytes();
  if (got.size() > size ||
      got != std::string(reinterpret_cast<const char *>(data), got.size()))
    galaxy::fuzz::violated("re-encoding the decoded fields changed the bytes");
  return 0;
}
