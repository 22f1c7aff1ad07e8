// Settings the CPU libraries read only once, when they are loaded, so they have
// to be in the environment before the process starts:
// - libgomp's wait policy. Its default (spin ~ms after every parallel region)
//   made BERT steps 2-10x slower and erratic on a shared 2-core machine, and
//   ranks sharing a host's cores fight the same way. Sleeping (PASSIVE) costs a
//   wake-up at each of a BERT-base step's ~317 parallel regions: ~50 us on a
//   2-core Zen 4 VM, where a bounded spin was no faster, but on a 2-core Zen 5
//   VM a spin of kSpinCount (~50 us there) ran the fp32 step 8-10% faster than
//   PASSIVE in every alternating round (issue 18, session 11). So a run that
//   is the only rank on its host, with no more threads than cores, spins that
//   long; anything else sleeps.
// - OpenBLAS's kernel (OPENBLAS_CORETYPE). Debian's OpenBLAS 0.3.21 does not
//   know newer CPUs and falls back to its Prescott (SSE3) kernels, 4-5x slower
//   than its AVX-512 ones on the same Xeon.
// Executables call prepareCpuLibraries() first thing in main().
#pragma once

#include <string>

namespace galaxy::rt::cpu {

// Sets what the user left unset — unless OMP_WAIT_POLICY or GOMP_SPINCOUNT
// is set, GOMP_SPINCOUNT=kSpinCount for a single rank (spinWaitSuits) else
// OMP_WAIT_POLICY=PASSIVE; and, when OpenBLAS chose Prescott on a CPU with
// AVX2 or AVX-512, OPENBLAS_CORETYPE=Haswell or SkylakeX — and re-executes
// /proc/self/exe with the same argv (once: GALAXY_LIBRARY_REEXEC guards against
// loops). Returns normally when nothing needs doing or the exec fails (the run
// then goes on with the libraries as loaded).
void prepareCpuLibraries(char **argv);

// libgomp spins this many pauses (~24 ns each on Zen 5) before it sleeps.
inline constexpr int kSpinCount = 2000;

// Whether this process may spin: it is the only rank on its host (argv has no
// --nproc above 1 nor --rank, and LOCAL_RANK is unset: ranks started by
// another launcher may share the host) and runs no more threads (threads) than
// the host has cores (cores).
bool spinWaitSuits(char **argv, int threads, int cores);

// Whether idle OpenMP threads in this process spin a while before they sleep
// (libgomp's default, or GOMP_SPINCOUNT > 0) rather than sleep at once
// (OMP_WAIT_POLICY=PASSIVE): then waking a second thread for a short kernel
// costs little.
bool openmpThreadsSpin();

// How idle OpenMP threads wait in this process, and who chose it, for the
// start-up line: "; OpenMP threads spin 2000 pauses, then sleep
// (GOMP_SPINCOUNT=2000, set by Galaxy: ...)" and the like.
std::string openmpWaitNote();

// Non-empty when prepareCpuLibraries chose OpenBLAS's kernel for this process:
// why, in words, for the start-up GEMM line.
std::string openblasCoreNote();

} // namespace galaxy::rt::cpu
