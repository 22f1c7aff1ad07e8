// Denormal floats take a slow microcode path on x86, and training produces
// them: BERT-base on the padded demo data ran its backward GEMMs at 3 GFLOP/s
// instead of ~200 (0.3 vs 12.9 samples/s) until the CPU flushed them to zero.
// The CPU backend sets FTZ/DAZ on every thread that runs its kernels;
// GALAXY_DENORMALS=keep leaves the IEEE behaviour.
#pragma once

#include <string>

namespace galaxy::rt::cpu {

// False when GALAXY_DENORMALS=keep.
bool flushDenormalsWanted();
// Sets (flush) or clears FTZ and DAZ on the calling thread; cheap when the
// thread already has that setting. The OpenMP pool the GEMM libraries and our
// loops run on is created by the first parallel region, from the thread that
// calls the kernels, and new threads inherit its setting. (No parallel region
// is opened just to set it: in a process forked after its parent used OpenMP,
// libgomp hangs in the first one.)
void setDenormalsOnThisThread(bool flush);
// For the start-up line.
std::string denormalsNote(bool flushed);

} // namespace galaxy::rt::cpu
