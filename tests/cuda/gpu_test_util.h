// Shared helpers of the GPU tests: why there is no GPU (for GTEST_SKIP), a
// probe that keeps CUDA out of a process that forks later, and one CUDA
// backend per process.
#pragma once

#include <optional>
#include <string>

#include "runtime/backend.h"
#include "runtime/cuda/device_memory.h"

namespace galaxy::rt::testing {

// Null when a GPU is usable in this process; else why not ("no usable GPU:
// cudaGetDeviceCount says cudaErrorNoDevice ...").
std::optional<std::string> noGpuReason();

// GPUs visible to a forked child (so this process never initialises CUDA and
// may fork ranks afterwards); `reason` says why when count is 0.
struct GpuProbe {
  int count = 0;
  std::string reason;
};
GpuProbe probeGpusInChild();

// The CUDA backend on GPU 0 (created once; requires noGpuReason() to be
// null) and its device memory.
Backend &gpuBackend();
DeviceMemory &gpuMemory();

} // namespace galaxy::rt::testing

// Skips the test, visibly and with the reason, where there is no GPU.
#define GALAXY_SKIP_WITHOUT_GPU()                                              \
  do {                                                                         \
    if (auto _why = ::galaxy::rt::testing::noGpuReason())                      \
      GTEST_SKIP() << *_why;                                                   \
  } while (0)
