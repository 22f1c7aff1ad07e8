// CUDA runtime / cuBLAS results as absl::Status (host side).
#pragma once

#include <string_view>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace galaxy::rt::cuda {

// OK for cudaSuccess, else Internal "<what>: <CUDA's name and text>".
absl::Status cudaStatus(cudaError_t e, std::string_view what);
inline absl::Status cudaStatus(int e, std::string_view what) {
  return cudaStatus(static_cast<cudaError_t>(e), what);
}
absl::Status cublasStatus(cublasStatus_t e, std::string_view what);

} // namespace galaxy::rt::cuda
