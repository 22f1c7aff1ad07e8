#include "runtime/io/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/io/temp_file.h"

namespace fs = std::filesystem;

namespace galaxy::io {

absl::Status writeTextAtomically(const std::string &path,
                                 const std::string &text) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty())
    dir = ".";
  std::string tmp =
      (dir / ("." + fs::path(path).filename().string() + ".tmp.XXXXXX"))
          .string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write '", path, "': ", std::strerror(errno)));
  TempFileGuard guard(tmp);
  ::fchmod(fd, 0644);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      const std::string err = std::strerror(n < 0 ? errno : EIO);
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot write '", path, "': ", err));
    }
    done += size_t(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::InternalError(
        absl::StrCat("cannot write '", path, "': ", std::strerror(errno)));
  guard.release();
  return absl::OkStatus();
}

} // namespace galaxy::io
