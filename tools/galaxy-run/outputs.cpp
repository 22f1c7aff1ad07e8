#include "tools/galaxy-run/outputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "runtime/io/temp_file.h"

namespace fs = std::filesystem;

namespace galaxy::run {
namespace {

std::string kindOf(mode_t m) {
  if (S_ISDIR(m))
    return "a directory";
  if (S_ISCHR(m))
    return "a character device";
  if (S_ISBLK(m))
    return "a block device";
  if (S_ISFIFO(m))
    return "a FIFO";
  if (S_ISSOCK(m))
    return "a socket";
  return "not a regular file";
}

void checkOne(const OutputPath &o) {
  const std::string what = absl::StrCat(o.flag, " ", o.path);
  struct stat st {};
  if (::lstat(o.path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const fs::path target = fs::read_symlink(o.path, ec);
      fail(2, absl::StrCat(
                  what, " is a symbolic link",
                  ec ? std::string() : absl::StrCat(" to ", target.string()),
                  "; galaxy-run writes a new file and renames it into place, "
                  "which would replace the link rather than write where it "
                  "points: give the path of the file itself"));
    }
    if (!S_ISREG(st.st_mode))
      fail(2, absl::StrCat(what, " is ", kindOf(st.st_mode),
                           "; galaxy-run writes a new file and renames it "
                           "into place, which would replace it: give the "
                           "path of a regular file (or of none yet)"));
  } else if (errno != ENOENT) {
    fail(2, absl::StrCat(what, ": cannot check it: ", std::strerror(errno)));
  }
  fs::path dir = fs::path(o.path).parent_path();
  if (dir.empty())
    dir = ".";
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) != 0)
    fail(2, absl::StrCat(what, ": directory ", dir.string(),
                         " does not exist; create it first"));
  if (!S_ISDIR(ds.st_mode))
    fail(2, absl::StrCat(what, ": ", dir.string(), " is not a directory"));
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail(2, absl::StrCat(what, ": directory ", dir.string(),
                         " is not writable (", std::strerror(errno), ")"));
}

} // namespace

std::vector<OutputPath> outputPaths(const Args &args) {
  std::vector<OutputPath> out;
  for (auto [flag, path] :
       {std::pair{"--eval-out", &args.evalOut}, std::pair{"--save", &args.save},
        std::pair{"--metrics", &args.metrics},
        std::pair{"--save-merged", &args.saveMerged},
        std::pair{"--dump-taps", &args.dumpTaps},
        std::pair{"--profile-json", &args.profileJson},
        std::pair{"--profile-svg", &args.profileSvg}})
    if (!path->empty())
      out.push_back({flag, *path});
  return out;
}

void checkOutputs(const Args &args) {
  std::map<std::string, std::string> seen; // normalised path -> flag
  for (const OutputPath &o : outputPaths(args)) {
    checkOne(o);
    std::error_code ec;
    fs::path norm = fs::weakly_canonical(o.path, ec);
    const std::string key = ec ? o.path : norm.string();
    auto [it, fresh] = seen.emplace(key, o.flag);
    if (!fresh)
      fail(2, absl::StrCat(it->second, " and ", o.flag, " both write ", o.path,
                           "; give each its own file"));
  }
}

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
  io::TempFileGuard guard(tmp);
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

} // namespace galaxy::run
