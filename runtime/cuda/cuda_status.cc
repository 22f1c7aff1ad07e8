#include "runtime/cuda/cuda_status.h"

#include "absl/strings/str_format.h"

namespace galaxy::rt::cuda {

absl::Status cudaStatus(cudaError_t e, std::string_view what) {
  if (e == cudaSuccess)
    return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("%s: CUDA error %s (%s)", what,
                                             cudaGetErrorName(e),
                                             cudaGetErrorString(e)));
}

absl::Status cublasStatus(cublasStatus_t e, std::string_view what) {
  if (e == CUBLAS_STATUS_SUCCESS)
    return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("%s: cuBLAS error %s (%s)", what,
                                             cublasGetStatusName(e),
                                             cublasGetStatusString(e)));
}

} // namespace galaxy::rt::cuda
