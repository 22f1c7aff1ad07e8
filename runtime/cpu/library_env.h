// Settings the CPU libraries read only once, when they are loaded, so they have
// to be in the environment before the process starts:
// - libgomp's wait policy (OMP_WAIT_POLICY). Its default (spin ~ms after every
//   parallel region) made BERT steps 2-10x slower and erratic on a shared
//   2-core machine. PASSIVE costs a wake-up (~50 us on a 2-core Zen 4 VM) at
//   each of a BERT-base step's ~317 parallel regions, yet a bounded spin
//   (GOMP_SPINCOUNT 1000, 5000, 20000) was no faster there in alternating
//   runs (issue 18), so PASSIVE stays the default; bench/bert_step.sh's
//   B_ENV="GOMP_SPINCOUNT=N" re-measures it.
// - OpenBLAS's kernel (OPENBLAS_CORETYPE). Debian's OpenBLAS 0.3.21 does not
//   know newer CPUs and falls back to its Prescott (SSE3) kernels, 4-5x slower
//   than its AVX-512 ones on the same Xeon.
// Executables call prepareCpuLibraries() first thing in main().
#pragma once

#include <string>

namespace galaxy::rt::cpu {

// Sets what the user left unset — OMP_WAIT_POLICY=PASSIVE (unless
// GOMP_SPINCOUNT is set) and, when OpenBLAS chose Prescott on a CPU with AVX2
// or AVX-512, OPENBLAS_CORETYPE=Haswell or SkylakeX — and re-executes
// /proc/self/exe with the same argv (once: GALAXY_LIBRARY_REEXEC guards against
// loops). Returns normally when nothing needs doing or the exec fails (the run
// then goes on with the libraries as loaded).
void prepareCpuLibraries(char **argv);

// Non-empty when prepareCpuLibraries chose OpenBLAS's kernel for this process:
// why, in words, for the start-up GEMM line.
std::string openblasCoreNote();

} // namespace galaxy::rt::cpu
