// The CPU kernels of docs/kernels.md, one function per kernel name; grouped by
// file: elementwise_kernels.cc, gemm_kernels.cc, attention_kernels.cc,
// norm_kernels.cc, token_kernels.cc, dropout_kernel.cc, optimizer_kernels.cc.
#pragma once

#include "runtime/cpu/kernel_call.h"

namespace galaxy::rt::cpu {

absl::Status fillKernel(const KernelCall &c);
absl::Status iotaKernel(const KernelCall &c);
absl::Status addKernel(const KernelCall &c);
absl::Status mulKernel(const KernelCall &c);
absl::Status scaleKernel(const KernelCall &c);
absl::Status geluKernel(const KernelCall &c);
absl::Status geluGradKernel(const KernelCall &c);
absl::Status geluGradBiasGradKernel(const KernelCall &c);
absl::Status reluKernel(const KernelCall &c);
absl::Status reluGradKernel(const KernelCall &c);
absl::Status siluKernel(const KernelCall &c);
absl::Status siluGradKernel(const KernelCall &c);
absl::Status tanhKernel(const KernelCall &c);
absl::Status tanhGradKernel(const KernelCall &c);

absl::Status linearKernel(const KernelCall &c);
absl::Status linearWeightGradKernel(const KernelCall &c);
absl::Status biasGradKernel(const KernelCall &c);
// bias_grad's column sums of x[rows, n] into out[n], rows added in order per
// column (dropout_kernel.cc); shared by the kernels that fuse it.
void columnSums(const float *x, int64_t rows, int64_t n, float *out,
                int threads);
absl::Status matmulKernel(const KernelCall &c);

absl::Status splitHeadsKernel(const KernelCall &c);
absl::Status mergeHeadsKernel(const KernelCall &c);
absl::Status mergeHeadsBiasGradKernel(const KernelCall &c);
absl::Status repeatKvKernel(const KernelCall &c);
absl::Status repeatKvGradKernel(const KernelCall &c);
absl::Status ropeKernel(const KernelCall &c);
// repeat_kv's shapes (few [B,nkv,S,d], many [B,n,S,d]) and head mapping on
// local shards: many-head h <-> few-head (h + headOffset) / groups, every
// many-head inside `few`. Shared by the CPU and CUDA kernels.
absl::Status checkRepeatKv(const KernelCall &c, const Tensor &few,
                           const Tensor &many, int64_t groups,
                           int64_t headOffset);
absl::Status maskedSoftmaxKernel(const KernelCall &c);
absl::Status softmaxGradKernel(const KernelCall &c);

absl::Status layerNormKernel(const KernelCall &c);
absl::Status layerNormGradKernel(const KernelCall &c);
absl::Status rmsNormKernel(const KernelCall &c);
absl::Status rmsNormGradKernel(const KernelCall &c);

absl::Status embeddingKernel(const KernelCall &c);
absl::Status embeddingGradKernel(const KernelCall &c);
absl::Status takeTokenKernel(const KernelCall &c);
absl::Status takeTokenGradKernel(const KernelCall &c);
absl::Status crossEntropyKernel(const KernelCall &c);
absl::Status crossEntropyGradKernel(const KernelCall &c);

absl::Status dropoutKernel(const KernelCall &c);
absl::Status dropoutAddKernel(const KernelCall &c);
absl::Status dropoutBiasGradKernel(const KernelCall &c);
// Moves a dropout block into the global batch of a pipeline microbatch
// (KernelContext::batchOffset/globalBatch) along its "batch_dim" attribute;
// a no-op outside pipelines. Shared by the CPU and CUDA kernels.
absl::Status placeInGlobalBatch(const KernelCall &c,
                                std::vector<int64_t> &global,
                                std::vector<int64_t> &offset);

absl::Status sgdUpdateKernel(const KernelCall &c);
absl::Status adamwUpdateKernel(const KernelCall &c);

} // namespace galaxy::rt::cpu
