// The readers under test take a path: give them the fuzz input as an
// in-memory file (memfd), reached through /proc/self/fd, so no run touches the
// disk and the input's bytes are exactly the file's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace galaxy::fuzz {

// An anonymous file holding `size` bytes of `data`; closed on destruction.
class MemFile {
public:
  MemFile(const uint8_t *data, size_t size);
  ~MemFile();
  MemFile(const MemFile &) = delete;
  MemFile &operator=(const MemFile &) = delete;
  const std::string &path() const { return path_; }

private:
  int fd_ = -1;
  std::string path_;
};

// Stops the run with `what` on stderr: libFuzzer records it as a crash. For
// a property the code under test promises (not for an error it returns).
[[noreturn]] void violated(const std::string &what);

} // namespace galaxy::fuzz
