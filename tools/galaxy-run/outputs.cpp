#include "tools/galaxy-run/outputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "runtime/io/text_file.h"

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

// --save-adapter DIR: an existing folder (its files are checked like any
// output), or a path whose parent folder exists and is writable (DIR is
// created when the adapter is written).
bool checkAdapterDir(const std::string &dir) {
  const std::string what = "--save-adapter " + dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      fail(2, absl::StrCat(what, " is ",
                           S_ISREG(st.st_mode) ? "a file" : kindOf(st.st_mode),
                           "; give the adapter's folder (PEFT writes "
                           "adapter_config.json and adapter_model.safetensors "
                           "into it), or a path that does not exist yet"));
    return true;
  }
  if (errno != ENOENT)
    fail(2, absl::StrCat(what, ": cannot check it: ", std::strerror(errno)));
  fs::path parent = fs::path(dir).lexically_normal();
  if (parent.filename().empty())
    parent = parent.parent_path();
  parent = parent.parent_path();
  if (parent.empty())
    parent = ".";
  struct stat ps {};
  if (::stat(parent.c_str(), &ps) != 0 || !S_ISDIR(ps.st_mode))
    fail(2, absl::StrCat(what, ": folder ", parent.string(),
                         " does not exist; create it first"));
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    fail(2, absl::StrCat(what, ": folder ", parent.string(),
                         " is not writable (", std::strerror(errno), "), so ",
                         dir, " cannot be created"));
  return false;
}

} // namespace

std::vector<OutputPath> outputPaths(const Args &args) {
  std::vector<OutputPath> out;
  for (auto [flag, path] :
       {std::pair{"--eval-out", &args.evalOut}, std::pair{"--save", &args.save},
        std::pair{"--metrics", &args.metrics},
        std::pair{"--output", &args.output},
        std::pair{"--save-merged", &args.saveMerged},
        std::pair{"--dump-taps", &args.dumpTaps},
        std::pair{"--profile-json", &args.profileJson},
        std::pair{"--profile-svg", &args.profileSvg}})
    if (!path->empty())
      out.push_back({flag, *path});
  if (!args.saveAdapter.empty())
    for (const char *file :
         {"adapter_config.json", "adapter_model.safetensors"})
      out.push_back(
          {"--save-adapter", (fs::path(args.saveAdapter) / file).string()});
  return out;
}

void checkOutputs(const Args &args) {
  std::map<std::string, std::string> seen; // normalised path -> flag
  const bool adapterDirExists =
      !args.saveAdapter.empty() && checkAdapterDir(args.saveAdapter);
  for (const OutputPath &o : outputPaths(args)) {
    if (o.flag != "--save-adapter" || adapterDirExists)
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

void checkOutput(const OutputPath &output) { checkOne(output); }

absl::Status writeTextAtomically(const std::string &path,
                                 const std::string &text) {
  return io::writeTextAtomically(path, text);
}

} // namespace galaxy::run
