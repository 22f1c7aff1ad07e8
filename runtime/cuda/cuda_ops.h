// The CUDA backend's host-side kernel wrappers, one per docs/kernels.md name:
// they check shapes and attributes like the CPU backend, then launch device
// code (launchers.h) or cuBLAS on the backend's stream. Grouped by file:
// ops_elementwise.cc, ops_gemm.cc, ops_rows.cc, ops_tokens.cc.
#pragma once

#include "runtime/cuda/cuda_op.h"

namespace galaxy::rt::cuda {

absl::Status fillOp(const CudaOp &op);
absl::Status iotaOp(const CudaOp &op);
absl::Status addOp(const CudaOp &op);
absl::Status mulOp(const CudaOp &op);
absl::Status scaleOp(const CudaOp &op);
absl::Status geluOp(const CudaOp &op);
absl::Status geluGradOp(const CudaOp &op);
absl::Status geluGradBiasGradOp(const CudaOp &op);
absl::Status reluOp(const CudaOp &op);
absl::Status reluGradOp(const CudaOp &op);
absl::Status siluOp(const CudaOp &op);
absl::Status siluGradOp(const CudaOp &op);
absl::Status tanhOp(const CudaOp &op);
absl::Status tanhGradOp(const CudaOp &op);
absl::Status dropoutOp(const CudaOp &op);
absl::Status dropoutAddOp(const CudaOp &op);
absl::Status dropoutBiasGradOp(const CudaOp &op);
absl::Status sgdUpdateOp(const CudaOp &op);
absl::Status adamwUpdateOp(const CudaOp &op);

absl::Status linearOp(const CudaOp &op);
absl::Status linearWeightGradOp(const CudaOp &op);
absl::Status biasGradOp(const CudaOp &op);
// bias_grad's shape rule, for it and its fused forms: dy[...,N] and db[N].
absl::Status checkBiasGrad(const cpu::KernelCall &c, const Tensor &dy,
                           const Tensor &db);
// db[n] = the column sums of dy[rows,n] (bias_grad: deterministic, through the
// backend's scratch), on the backend's stream.
absl::Status columnSumsInto(const CudaOp &op, const float *dy, int64_t rows,
                            int64_t n, float *db);
absl::Status matmulOp(const CudaOp &op);

absl::Status splitHeadsOp(const CudaOp &op);
absl::Status mergeHeadsOp(const CudaOp &op);
absl::Status mergeHeadsBiasGradOp(const CudaOp &op);
absl::Status repeatKvOp(const CudaOp &op);
absl::Status repeatKvGradOp(const CudaOp &op);
absl::Status ropeOp(const CudaOp &op);
absl::Status maskedSoftmaxOp(const CudaOp &op);
absl::Status softmaxGradOp(const CudaOp &op);
absl::Status layerNormOp(const CudaOp &op);
absl::Status layerNormGradOp(const CudaOp &op);
absl::Status rmsNormOp(const CudaOp &op);
absl::Status rmsNormGradOp(const CudaOp &op);
absl::Status crossEntropyOp(const CudaOp &op);
absl::Status crossEntropyGradOp(const CudaOp &op);

absl::Status embeddingOp(const CudaOp &op);
absl::Status embeddingGradOp(const CudaOp &op);
absl::Status takeTokenOp(const CudaOp &op);
absl::Status takeTokenGradOp(const CudaOp &op);

} // namespace galaxy::rt::cuda
