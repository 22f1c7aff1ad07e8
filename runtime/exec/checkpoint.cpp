#include "runtime/exec/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/exec/executor.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace galaxy::rt {
namespace {

constexpr const char *kPrefix = "step-";
constexpr const char *kManifest = "MANIFEST.json";
constexpr const char *kState = "trainer_state.json";
constexpr const char *kModel = "model.safetensors";
constexpr const char *kOptimizer = "optimizer.safetensors";
constexpr const char *kFormat = "galaxy-checkpoint";
constexpr int kVersion = 1;

std::string errnoText() { return std::strerror(errno); }

// Step N of a directory named step-<N>; -1 for any other name.
int64_t stepOfName(const std::string &name) {
  if (name.rfind(kPrefix, 0) != 0 || name.size() == strlen(kPrefix))
    return -1;
  int64_t n = 0;
  for (size_t i = strlen(kPrefix); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > (INT64_MAX - 9) / 10)
      return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

absl::Status fsyncPath(const std::string &path, bool directory) {
  const int fd =
      ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0)
    return absl::InternalError(
        absl::StrCat("cannot open ", path, " to sync it: ", errnoText()));
  // Some filesystems refuse fsync on a directory: best effort there.
  const bool ok = ::fsync(fd) == 0 || directory;
  const std::string err = errnoText();
  ::close(fd);
  if (!ok)
    return absl::InternalError(absl::StrCat("fsync ", path, ": ", err));
  return absl::OkStatus();
}

// A small file inside the temporary directory, synced (the directory is
// what is renamed atomically, so the file itself need not be).
absl::Status writeSynced(const std::string &path, const std::string &text) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", errnoText()));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      const std::string err = n < 0 ? errnoText() : "short write";
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot write ", path, ": ", err));
    }
    done += size_t(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const std::string err = errnoText();
  if (::close(fd) != 0 || !synced)
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", err));
  return absl::OkStatus();
}

absl::StatusOr<json> readJson(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::DataLossError(absl::StrCat(path, " is not a JSON object"));
  return j;
}

// Whether `stepDir` holds a manifest of this format whose files all exist
// with the sizes it lists; the reason when not.
absl::Status checkComplete(const std::string &stepDir) {
  auto m = readJson((fs::path(stepDir) / kManifest).string());
  if (!m.ok())
    return absl::NotFoundError(
        absl::StrCat(stepDir, " has no readable ", kManifest,
                     " (a checkpoint whose write did not finish)"));
  if (m->value("format", "") != kFormat || m->value("version", 0) != kVersion)
    return absl::FailedPreconditionError(
        absl::StrCat(stepDir, "/", kManifest, " is not a version ", kVersion,
                     " ", kFormat, " manifest"));
  if (!m->contains("files") || !(*m)["files"].is_object())
    return absl::DataLossError(
        absl::StrCat(stepDir, "/", kManifest, " lists no files"));
  for (const auto &[name, size] : (*m)["files"].items()) {
    std::error_code ec;
    const uintmax_t have = fs::file_size(fs::path(stepDir) / name, ec);
    if (ec || !size.is_number_unsigned() || have != size.get<uintmax_t>())
      return absl::DataLossError(absl::StrCat(stepDir, "/", name,
                                              " is missing or not the size ",
                                              kManifest, " lists"));
  }
  return absl::OkStatus();
}

json stateJson(const CheckpointState &s) {
  return json{{"step", s.step},          {"seed", s.seed},
              {"shuffle", s.shuffle},    {"data", s.dataPath},
              {"data_rows", s.dataRows}, {"batch_size", s.batchSize},
              {"layout", s.layout},      {"config", s.configJson},
              {"format", kFormat},       {"version", kVersion}};
}

absl::StatusOr<CheckpointState> stateOf(const json &j,
                                        const std::string &path) {
  CheckpointState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.shuffle = j.at("shuffle").get<bool>();
    s.dataPath = j.at("data").get<std::string>();
    s.dataRows = j.at("data_rows").get<int64_t>();
    s.batchSize = j.at("batch_size").get<int64_t>();
    s.layout = j.at("layout").get<std::string>();
    s.configJson = j.at("config").get<std::string>();
  } catch (const std::exception &e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  if (s.step < 0)
    return absl::DataLossError(absl::StrCat(path, ": negative step"));
  return s;
}

// Removes `path` and everything under it; best effort.
void removeTree(const fs::path &path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

} // namespace

std::string checkpointDirName(int64_t step) {
  return absl::StrFormat("%s%08d", kPrefix, step);
}

std::vector<std::string> completeCheckpoints(const std::string &dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    const int64_t step = stepOfName(e.path().filename().string());
    if (step >= 0 && e.is_directory(ec) && checkComplete(e.path()).ok())
      found.push_back({step, e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto &[step, path] : found)
    out.push_back(std::move(path));
  return out;
}

absl::StatusOr<std::string>
writeCheckpoint(const std::string &dir, const CheckpointState &state,
                const std::vector<io::TensorToWrite> &tensors, int64_t keep,
                const std::function<void()> &beforeManifest) {
  const std::string name = checkpointDirName(state.step);
  const fs::path final = fs::path(dir) / name;
  const fs::path tmp =
      fs::path(dir) / absl::StrCat(".", name, ".tmp-", ::getpid());
  removeTree(tmp);
  if (::mkdir(tmp.c_str(), 0755) != 0)
    return absl::PermissionDeniedError(absl::StrCat(
        "checkpoint: cannot create ", tmp.string(), ": ", errnoText()));
  auto failed = [&](const absl::Status &s) {
    removeTree(tmp);
    return absl::Status(s.code(),
                        absl::StrCat("checkpoint of step ", state.step, " in ",
                                     dir, ": ", s.message()));
  };
  std::vector<io::TensorToWrite> model, optimizer;
  for (const io::TensorToWrite &t : tensors)
    (isOptStateName(t.name) ? optimizer : model).push_back(t);
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"producer", "galaxy-run checkpoint"}};
  // writeSafetensors syncs each file before renaming it into the temporary.
  if (absl::Status s =
          io::writeSafetensors((tmp / kModel).string(), model, meta);
      !s.ok())
    return failed(s);
  if (absl::Status s =
          io::writeSafetensors((tmp / kOptimizer).string(), optimizer, meta);
      !s.ok())
    return failed(s);
  if (absl::Status s =
          writeSynced((tmp / kState).string(), stateJson(state).dump(1) + "\n");
      !s.ok())
    return failed(s);
  if (beforeManifest)
    beforeManifest();
  json files = json::object();
  for (const char *f : {kModel, kOptimizer, kState}) {
    std::error_code ec;
    files[f] = fs::file_size(tmp / f, ec);
    if (ec)
      return failed(absl::InternalError(absl::StrCat(
          "cannot stat ", (tmp / f).string(), ": ", ec.message())));
  }
  json manifest = {{"format", kFormat},
                   {"version", kVersion},
                   {"step", state.step},
                   {"files", files}};
  if (absl::Status s =
          writeSynced((tmp / kManifest).string(), manifest.dump(1) + "\n");
      !s.ok())
    return failed(s);
  if (absl::Status s = fsyncPath(tmp.string(), /*directory=*/true); !s.ok())
    return failed(s);
  // A checkpoint of this step already there (a run resumed from it and
  // stopped again at once) is moved aside first: rename() cannot replace a
  // directory that holds files.
  std::error_code ec;
  fs::path old;
  if (fs::exists(final, ec)) {
    old = fs::path(dir) / absl::StrCat(".", name, ".old-", ::getpid());
    removeTree(old);
    if (::rename(final.c_str(), old.c_str()) != 0)
      return failed(absl::InternalError(absl::StrCat("cannot move the earlier ",
                                                     final.string(),
                                                     " aside: ", errnoText())));
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0)
    return failed(
        absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), " to ",
                                         final.string(), ": ", errnoText())));
  (void)fsyncPath(dir, /*directory=*/true); // persist the rename
  if (!old.empty())
    removeTree(old);
  // Temporaries of killed writes (any process's: one directory serves one
  // run at a time), then the oldest complete checkpoints beyond `keep`.
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind(std::string(".") + kPrefix, 0) == 0 &&
        (f.find(".tmp-") != std::string::npos ||
         f.find(".old-") != std::string::npos))
      removeTree(e.path());
  }
  if (keep > 0) {
    std::vector<std::string> all = completeCheckpoints(dir);
    for (size_t i = 0; i + keep < all.size(); ++i)
      removeTree(all[i]);
  }
  return final.string();
}

absl::StatusOr<LoadedCheckpoint> openCheckpoint(const std::string &where) {
  std::string stepDir = where;
  if (!fs::exists(fs::path(where) / kManifest)) {
    std::error_code ec;
    if (!fs::is_directory(where, ec))
      return absl::NotFoundError(
          absl::StrCat("--resume ", where, ": no such checkpoint directory"));
    std::vector<std::string> all = completeCheckpoints(where);
    if (all.empty())
      return absl::NotFoundError(absl::StrCat(
          "--resume ", where, ": no complete checkpoint in it (a directory ",
          kPrefix, "N holding ", kManifest, ")"));
    stepDir = all.back();
  }
  if (absl::Status s = checkComplete(stepDir); !s.ok())
    return absl::Status(s.code(), absl::StrCat("--resume: ", s.message()));
  LoadedCheckpoint c;
  c.path = stepDir;
  const std::string statePath = (fs::path(stepDir) / kState).string();
  auto j = readJson(statePath);
  if (!j.ok())
    return j.status();
  auto s = stateOf(*j, statePath);
  if (!s.ok())
    return s.status();
  c.state = std::move(*s);
  auto m = io::readSafetensors((fs::path(stepDir) / kModel).string());
  if (!m.ok())
    return m.status();
  c.model = std::move(*m);
  auto o = io::readSafetensors((fs::path(stepDir) / kOptimizer).string());
  if (!o.ok())
    return o.status();
  c.optimizer = std::move(*o);
  return c;
}

absl::Status compareCheckpointConfig(const std::string &saved,
                                     const std::string &now,
                                     std::vector<std::string> *layoutChanges) {
  static const std::set<std::string> kLayout = {"parallel_mode",
                                                "world_size",
                                                "tp_num_attention_heads_list",
                                                "tp_intermediate_size_list",
                                                "seq_scatter_list",
                                                "dp_batch_list",
                                                "att_parallel_method",
                                                "con_parallel_method",
                                                "mlp_parallel_method",
                                                "stage_num_hidden_layers_list",
                                                "num_microbatches",
                                                "pp_microbatch_list",
                                                "pp_schedule"};
  static const std::set<std::string> kNotCompared = {"num_epochs", "seed"};
  json a = json::parse(saved, nullptr, false),
       b = json::parse(now, nullptr, false);
  if (a.is_discarded() || !a.is_object())
    return absl::DataLossError("the checkpoint's config is not a JSON object");
  if (b.is_discarded() || !b.is_object())
    return absl::InvalidArgumentError("the plan's config is not a JSON object");
  std::set<std::string> keys;
  for (const auto &[k, v] : a.items())
    keys.insert(k);
  for (const auto &[k, v] : b.items())
    keys.insert(k);
  auto show = [](const json &o, const std::string &k) {
    return o.contains(k) ? o[k].dump() : std::string("(absent)");
  };
  for (const std::string &k : keys) {
    if (kNotCompared.count(k) || show(a, k) == show(b, k))
      continue;
    const std::string diff =
        absl::StrCat(k, " ", show(a, k), " -> ", show(b, k));
    if (kLayout.count(k)) {
      layoutChanges->push_back(diff);
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "the plan's config differs from the checkpoint's: ", k, " is ",
        show(b, k), " in the plan but ", show(a, k),
        " in the checkpoint; a resume continues the same training (only "
        "the parallel layout may change): compile the checkpoint's config"));
  }
  return absl::OkStatus();
}

} // namespace galaxy::rt
