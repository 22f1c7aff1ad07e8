#include "runtime/cpu/library_env.h"

#include <unistd.h>

#include <omp.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/cpu/gemm.h"
#include "runtime/launcher_env.h"

extern "C" {
#include <cblas.h>
}

namespace galaxy::rt::cpu {
namespace {

constexpr char kReexec[] = "GALAXY_LIBRARY_REEXEC";
constexpr char kCoreSet[] = "GALAXY_OPENBLAS_CORETYPE_SET";
constexpr char kWaitSet[] = "GALAXY_OMP_WAIT_SET";

// The kernel to ask OpenBLAS for, or null when its own choice stands: only the
// generic fallback is overridden, never a core it recognised.
const char *betterOpenBlasCore() {
  if (std::string_view(openblas_get_corename()) != "Prescott")
    return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "Haswell";
  return nullptr;
}

} // namespace

bool spinWaitSuits(char **argv, int threads, int cores) {
  if (threads > cores)
    return false;
  for (const LauncherEnv &l : kLauncherEnvs)
    if (std::getenv(l.rank) || std::getenv(l.world) || std::getenv(l.local))
      return false;
  for (char **a = argv; a && *a; ++a) {
    const std::string_view arg(*a);
    if (arg == "--rank" || arg.starts_with("--rank="))
      return false;
    std::string_view n;
    if (arg == "--nproc" && a[1])
      n = a[1];
    else if (arg.starts_with("--nproc="))
      n = arg.substr(8);
    else
      continue;
    int v = 0;
    if (!absl::SimpleAtoi(absl::string_view(n.data(), n.size()), &v) || v > 1)
      return false;
  }
  return true;
}

void prepareCpuLibraries(char **argv) {
  if (std::getenv(kReexec) || !argv || !argv[0])
    return;
  bool changed = false;
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    if (spinWaitSuits(argv, threadsFromEnv().threads, omp_get_num_procs()))
      setenv("GOMP_SPINCOUNT", std::to_string(kSpinCount).c_str(), 0);
    else
      setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    setenv(kWaitSet, "1", 1);
    changed = true;
  }
  if (!std::getenv("OPENBLAS_CORETYPE"))
    if (const char *core = betterOpenBlasCore()) {
      setenv("OPENBLAS_CORETYPE", core, 0);
      setenv(kCoreSet, core, 1);
      changed = true;
    }
  if (!changed)
    return;
  setenv(kReexec, "1", 0);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the libraries as loaded.
}

namespace {

// libgomp's reading: a GOMP_SPINCOUNT that parses (a number with an optional
// k/M/G/T suffix, or "infinite") sets the spin count and OMP_WAIT_POLICY is
// then ignored; otherwise PASSIVE means no spin, and anything else spins.
// Null when GOMP_SPINCOUNT is unset or does not parse.
std::optional<bool> spinCountSpins(const char *spins) {
  if (!spins)
    return std::nullopt;
  std::string_view v(spins);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  const absl::string_view av(v.data(), v.size());
  if (absl::StartsWithIgnoreCase(av, "infinite") ||
      absl::StartsWithIgnoreCase(av, "infinity"))
    return true;
  size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9')
    ++digits;
  if (digits == 0)
    return std::nullopt;
  std::string_view rest = v.substr(digits);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
    rest.remove_prefix(1);
  if (!rest.empty() &&
      std::string_view("kKmMgGtT").find(rest.front()) != std::string_view::npos)
    rest.remove_prefix(1);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
    rest.remove_prefix(1);
  if (!rest.empty())
    return std::nullopt;
  return v.substr(0, digits).find_first_not_of('0') != std::string_view::npos;
}

} // namespace

bool openmpThreadsSpin() {
  if (std::optional<bool> s = spinCountSpins(std::getenv("GOMP_SPINCOUNT")))
    return *s;
  const char *policy = std::getenv("OMP_WAIT_POLICY");
  return !(policy && absl::EqualsIgnoreCase(policy, "passive"));
}

std::string openmpWaitNote() {
  const char *policy = std::getenv("OMP_WAIT_POLICY");
  const char *spins = std::getenv("GOMP_SPINCOUNT");
  const std::string who =
      !std::getenv(kWaitSet) ? "set by the user"
      : policy ? "set by Galaxy: ranks may share this host's cores, or there "
                 "are more threads than cores"
               : "set by Galaxy: the only rank on this host";
  // As libgomp reads them: a valid GOMP_SPINCOUNT overrides the policy.
  if (spinCountSpins(spins))
    return absl::StrCat("; OpenMP threads spin ", spins,
                        " pauses, then sleep (GOMP_SPINCOUNT=", spins, ", ",
                        who, ")");
  if (policy && *policy)
    return absl::StrCat("; OpenMP threads wait as OMP_WAIT_POLICY=", policy,
                        " (", who, ")");
  return "; OpenMP threads wait as libgomp does by default (spin, then sleep)";
}

std::string openblasCoreNote() {
  const char *core = std::getenv(kCoreSet);
  const char *asked = std::getenv("OPENBLAS_CORETYPE");
  if (!core || !asked || std::string_view(core) != asked)
    return "";
  return std::string("OPENBLAS_CORETYPE=") + core +
         " set by Galaxy: OpenBLAS did not recognise this CPU and fell back to "
         "Prescott";
}

} // namespace galaxy::rt::cpu
