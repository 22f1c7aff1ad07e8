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

void checkMemory(const plan::PlanMemory &need, const std::string &plan,
                 int ranks) {
  const char *skip = std::getenv("GALAXY_SKIP_MEMORY_CHECK");
  if (skip && std::string(skip) == "1")
    return;
  std::optional<int64_t> available = availableMemoryBytes();
  if (!available || need.total <= *available)
    return;
  fail(2, absl::StrCat(
              ranks > 1 ? absl::StrCat("the ", ranks, " ranks of plan ", plan,
                                       " need ")
                        : absl::StrCat("plan ", plan, " needs "),
              human(need.total), " (", need.total, " bytes: activation arena ",
              human(need.arena), ", parameters ", human(need.params),
              ", optimizer state ", human(need.optimizerState), ", inputs ",
              human(need.inputs),
              need.stash ? absl::StrCat(", stash ", human(need.stash)) : "",
              ") but this machine has ", human(*available), " (", *available,
              " bytes) available (MemAvailable in /proc/meminfo); compile a "
              "smaller config or split it over more machines "
              "(GALAXY_SKIP_MEMORY_CHECK=1 tries anyway)"));
}

} // namespace galaxy::run
