// The CPU Backend. galaxy::rt::makeCpuBackend() (runtime/backend.h) reads
// GALAXY_THREADS and GALAXY_GEMM; this entry point lets a caller (tests,
// galaxy-run flags) choose explicitly.
#pragma once

#include <memory>
#include <optional>

#include "runtime/backend.h"
#include "runtime/cpu/gemm.h"

namespace galaxy::rt::cpu {

struct CpuBackendOptions {
  std::optional<GemmKind>
      gemm;        // unset: GALAXY_GEMM, else the faster by measurement
  int threads = 0; // 0: GALAXY_THREADS, else the number of cores
};

std::unique_ptr<Backend> makeCpuBackend(const CpuBackendOptions &options);

} // namespace galaxy::rt::cpu
