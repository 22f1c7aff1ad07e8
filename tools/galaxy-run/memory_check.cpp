#include "tools/galaxy-run/memory_check.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {
namespace {

std::string human(int64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat(u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

} // namespace

std::optional<int64_t> availableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    int64_t kib = -1;
    if (fields >> key >> kib >> unit && key == "MemAvailable:" && kib >= 0 &&
        kib < (int64_t{1} << 52))
      return kib * 1024;
  }
  return std::nullopt;
}

namespace {

bool skipped() {
  const char *skip = std::getenv("GALAXY_SKIP_MEMORY_CHECK");
  return skip && std::string(skip) == "1";
}

// Fails naming the need, its parts and what `where` has available (`how`:
// where the figure comes from).
[[noreturn]] void refuse(const plan::PlanMemory &need, const std::string &plan,
                         int ranks, int64_t available, const std::string &where,
                         const std::string &how) {
  fail(2, absl::StrCat(
              ranks > 1 ? absl::StrCat("the ", ranks, " ranks of plan ", plan,
                                       " need ")
                        : absl::StrCat("plan ", plan, " needs "),
              human(need.total), " (", need.total, " bytes: activation arena ",
              human(need.arena), ", parameters ", human(need.params),
              ", optimizer state ", human(need.optimizerState), ", inputs ",
              human(need.inputs),
              need.stash ? absl::StrCat(", stash ", human(need.stash)) : "",
              ") but ", where, " has ", human(available), " (", available,
              " bytes) available (", how,
              "); compile a smaller config or split it over "
              "more devices (GALAXY_SKIP_MEMORY_CHECK=1 tries anyway)"));
}

} // namespace

void checkMemory(const plan::PlanMemory &need, const std::string &plan,
                 int ranks) {
  if (skipped())
    return;
  std::optional<int64_t> available = availableMemoryBytes();
  if (available && need.total > *available)
    refuse(need, plan, ranks, *available, "this machine",
           "MemAvailable in /proc/meminfo");
}

void checkDeviceMemory(const plan::PlanMemory &need, const std::string &plan,
                       int device, int64_t freeBytes, int64_t totalBytes) {
  if (!skipped() && need.total > freeBytes)
    refuse(need, plan, 1, freeBytes, absl::StrCat("GPU ", device),
           absl::StrCat("cudaMemGetInfo; ", human(totalBytes), " in all"));
}

} // namespace galaxy::run
