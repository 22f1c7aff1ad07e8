#include "runtime/cpu/denormals.h"

#include <cstdlib>
#include <string_view>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace galaxy::rt::cpu {

bool flushDenormalsWanted() {
  const char *env = std::getenv("GALAXY_DENORMALS");
  return !(env && std::string_view(env) == "keep");
}

void setDenormalsOnThisThread(bool flush) {
  // Threads inherit the creator's setting, so "keep" is set explicitly too.
  thread_local int mode = -1;
  if (mode == int(flush))
    return;
  mode = int(flush);
#if defined(__x86_64__)
  // FTZ (bit 15): denormal results become 0; DAZ (bit 6): denormal inputs
  // read as 0.
  constexpr unsigned kFtzDaz = 0x8040;
  _mm_setcsr(flush ? (_mm_getcsr() | kFtzDaz) : (_mm_getcsr() & ~kFtzDaz));
#endif
}

std::string denormalsNote(bool flushed) {
  return flushed ? "; denormals flushed to zero (GALAXY_DENORMALS=keep keeps "
                   "them)"
                 : "; denormals kept (GALAXY_DENORMALS=keep)";
}

} // namespace galaxy::rt::cpu
