#include "runtime/cpu/kernel_profile.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::rt::cpu {
bool KernelProfile::enabledByEnv() {
  const char *env = std::getenv("GALAXY_PROFILE");
  return env && *env && std::string_view(env) != "0";
}

bool KernelProfile::byShapeByEnv() {
  const char *env = std::getenv("GALAXY_PROFILE");
  return env && std::string_view(env) == "shapes";
}

void KernelProfile::record(const plan::Instr &instr, double seconds,
                           double flops, const std::string &shapes) {
  Stat &s =
      stats_[absl::StrCat(instr.kernel(), instr.backward() ? " (bwd)" : "",
                          shapes.empty() ? "" : " ", shapes)];
  ++s.calls;
  s.seconds += seconds;
  s.flops += flops;
}

std::string KernelProfile::table() const {
  std::vector<std::pair<std::string, Stat>> rows(stats_.begin(), stats_.end());
  std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) {
    return a.second.seconds > b.second.seconds;
  });
  double total = 0, flops = 0;
  for (const auto &[name, s] : rows) {
    total += s.seconds;
    flops += s.flops;
  }
  std::string out = absl::StrFormat(
      "GALAXY_PROFILE: CPU kernel wall time (all calls of this backend)\n"
      "%-28s %8s %10s %6s %10s %8s\n",
      "kernel", "calls", "total ms", "%", "mean us", "GFLOP/s");
  for (const auto &[name, s] : rows) {
    absl::StrAppend(&out,
                    absl::StrFormat("%-28s %8d %10.1f %6.1f %10.1f", name,
                                    s.calls, s.seconds * 1e3,
                                    total > 0 ? 100 * s.seconds / total : 0,
                                    s.seconds / s.calls * 1e6));
    if (s.flops > 0 && s.seconds > 0)
      absl::StrAppend(&out,
                      absl::StrFormat(" %8.1f", s.flops / s.seconds * 1e-9));
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, absl::StrFormat("%-28s %8s %10.1f %6.1f %10s", "total",
                                        "", total * 1e3, 100.0, ""));
  if (flops > 0 && total > 0)
    absl::StrAppend(&out, absl::StrFormat(" %8.1f", flops / total * 1e-9));
  return out + "\n";
}

} // namespace galaxy::rt::cpu
