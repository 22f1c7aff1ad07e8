#include "runtime/cpu/kernel_profile.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::rt::cpu {
namespace {

int64_t rows(const Tensor &t) {
  int64_t n = 1;
  for (size_t i = 0; i + 1 < t.shape.size(); ++i)
    n *= t.shape[i];
  return n;
}

} // namespace

double kernelFlops(const plan::Instr &instr, const std::vector<Tensor> &in,
                   const std::vector<Tensor> &out) {
  const std::string &k = instr.kernel();
  if (out.empty() || in.empty() || out[0].shape.empty() || in[0].shape.empty())
    return 0;
  if (k == "linear") // y[rows,N] from x[rows,K]
    return 2.0 * double(out[0].numel()) * double(in[0].shape.back());
  if (k == "linear_weight_grad") // dw[N,K] summed over rows
    return 2.0 * double(out[0].numel()) * double(rows(in[0]));
  if (k == "matmul" && in[0].shape.size() >= 2) {
    auto it = instr.attrs().find("transpose_a");
    const bool ta = it != instr.attrs().end() && it->second.i() != 0;
    const auto &a = in[0].shape;
    const int64_t kdim = ta ? a[a.size() - 2] : a.back();
    return 2.0 * double(out[0].numel()) * double(kdim);
  }
  return 0;
}

bool KernelProfile::enabledByEnv() {
  const char *env = std::getenv("GALAXY_PROFILE");
  return env && *env && std::string_view(env) != "0";
}

void KernelProfile::record(const plan::Instr &instr, double seconds,
                           double flops) {
  Stat &s = stats_[instr.backward() ? absl::StrCat(instr.kernel(), " (bwd)")
                                    : instr.kernel()];
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
