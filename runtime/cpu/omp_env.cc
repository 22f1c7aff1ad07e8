#include "runtime/cpu/omp_env.h"

#include <unistd.h>

#include <cstdlib>

namespace galaxy::rt::cpu {

void ensurePassiveOpenMp(char **argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") ||
      std::getenv("GALAXY_OMP_REEXEC") || !argv || !argv[0])
    return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  setenv("GALAXY_OMP_REEXEC", "1", 0);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the policy already loaded.
}

} // namespace galaxy::rt::cpu
