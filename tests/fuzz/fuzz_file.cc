#include "tests/fuzz/fuzz_file.h"

#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>

namespace galaxy::fuzz {

MemFile::MemFile(const uint8_t *data, size_t size) {
  fd_ = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd_ < 0)
    violated("memfd_create failed");
  for (size_t done = 0; done < size;) {
    ssize_t n = ::write(fd_, data + done, size - done);
    if (n <= 0)
      violated("writing the memfd failed");
    done += size_t(n);
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() { ::close(fd_); }

void violated(const std::string &what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

} // namespace galaxy::fuzz
