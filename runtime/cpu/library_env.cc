#include "runtime/cpu/library_env.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

extern "C" {
#include <cblas.h>
}

namespace galaxy::rt::cpu {
namespace {

constexpr char kReexec[] = "GALAXY_LIBRARY_REEXEC";
constexpr char kCoreSet[] = "GALAXY_OPENBLAS_CORETYPE_SET";

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

void prepareCpuLibraries(char **argv) {
  if (std::getenv(kReexec) || !argv || !argv[0])
    return;
  bool changed = false;
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
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
