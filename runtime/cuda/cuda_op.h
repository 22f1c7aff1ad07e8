// What every host-side CUDA kernel wrapper receives. The CPU backend's checks
// and attribute readers (runtime/cpu/kernel_call.h) are reused through `c`, so
// both backends accept and reject the same instructions with the same words.
#pragma once

#include <cstddef>
#include <string_view>

#include <cublas_v2.h>

#include "absl/status/statusor.h"
#include "runtime/cpu/kernel_call.h"
#include "runtime/cuda/launchers.h"

#define GALAXY_CUDA_RETURN_IF_ERROR GALAXY_CPU_RETURN_IF_ERROR
#define GALAXY_CUDA_ASSIGN_OR_RETURN GALAXY_CPU_ASSIGN_OR_RETURN

namespace galaxy::rt::cuda {

// Device scratch that grows on demand and is reused by every kernel of one
// backend (kernels run in stream order, so one buffer suffices).
class DeviceScratch {
public:
  ~DeviceScratch();
  absl::StatusOr<void *> get(size_t bytes);

private:
  void *ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct CudaEnv {
  Stream stream = nullptr;
  cublasHandle_t blas = nullptr;
  DeviceScratch *scratch = nullptr;
  // One device int for data-dependent index checks (cross-entropy labels,
  // take_token indices): resetBadRow, a kernel's atomicMin, firstBadRow.
  int32_t *badRow = nullptr;
};

struct CudaOp {
  const cpu::KernelCall &c; // instr, in, out, ctx (all tensors on the device)
  const CudaEnv &env;
};

using CudaKernelFn = absl::Status (*)(const CudaOp &);

// OK when a launcher returned 0; else the CUDA error, naming the kernel.
absl::Status launched(const CudaOp &op, int err);

// Indices live on the device: a kernel records the lowest bad row in
// env.badRow (set to `rows` first by resetBadRow) and firstBadRow reads it
// back (one small synchronous copy), so a bad index is an error naming the
// row, as on the CPU. `rows` from firstBadRow: none was bad.
absl::Status resetBadRow(const CudaOp &op, int64_t rows);
absl::StatusOr<int64_t> firstBadRow(const CudaOp &op, std::string_view what);
// The i32 at element `at` of a device tensor (for naming a bad index).
absl::StatusOr<int32_t> deviceI32At(const CudaOp &op, const int32_t *data,
                                    int64_t at, std::string_view what);

} // namespace galaxy::rt::cuda
