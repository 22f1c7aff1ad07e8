// The CUDA Backend: the kernels of docs/kernels.md on one GPU, fp32, cuBLAS for
// the GEMMs. Tensors handed to Backend::run are DEVICE pointers (allocate them
// with the backend's DeviceMemory); the data-movement kernels stay with the
// executor, as for the CPU backend.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/cuda/device_memory.h"

namespace galaxy::rt {

// The backend on GPU `device`, or null when that GPU cannot be used
// (cuda::createCudaBackend says why).
std::unique_ptr<Backend> makeCudaBackend(int device);

} // namespace galaxy::rt

namespace galaxy::rt::cuda {

struct CudaBackendOptions {
  int device = 0;
  // TF32 tensor-core GEMMs (faster, ~1e-3 relative error). Unset: the
  // GALAXY_TF32=1 environment variable turns it on; default off (exact fp32).
  int tf32 = -1;
};

absl::StatusOr<std::unique_ptr<Backend>>
createCudaBackend(const CudaBackendOptions &options);

// How many GPUs this process can use; an error (no driver, no device, ...)
// says why there are none. Initialises the CUDA runtime: in a process that
// forks afterwards, call it in a child.
absl::StatusOr<int> visibleDeviceCount();

// Free and total bytes of GPU `device` (cudaMemGetInfo), for the memory
// check galaxy-run makes before allocating.
absl::StatusOr<std::pair<int64_t, int64_t>> deviceMemoryInfo(int device);

// The device-memory side of a CUDA backend; null for any other backend.
DeviceMemory *deviceMemoryOf(Backend &backend);

} // namespace galaxy::rt::cuda
