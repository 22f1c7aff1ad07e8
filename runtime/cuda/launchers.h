// The boundary between the host side of the CUDA backend (g++: validation,
// attributes, cuBLAS) and its device code (nvcc, the *.cu files). Plain types
// only, so nvcc never parses absl or protobuf headers. Every launcher enqueues
// on `stream` and returns the launch's cudaError_t as an int (0 = success).
// All pointers are device pointers.
#pragma once

#include <cstdint>

namespace galaxy::rt::cuda {

using Stream = void *; // cudaStream_t

// Most dims a dropout tensor may have (plans use at most 4).
constexpr int kMaxDims = 8;

// --- elementwise.cu ---------------------------------------------------------
int launchFillF32(float *y, int64_t n, float value, Stream s);
int launchFillI32(int32_t *y, int64_t n, int32_t value, Stream s);
// y[i] = (i / stride) % size + offset
int launchIota(int32_t *y, int64_t n, int64_t stride, int64_t size,
               int64_t offset, Stream s);
int launchAdd(const float *a, const float *b, float *y, int64_t n, Stream s);
int launchMul(const float *a, const float *b, float *y, int64_t n, Stream s);
int launchScale(const float *x, float *y, int64_t n, float alpha, Stream s);
int launchGelu(const float *x, float *y, int64_t n, bool tanhApprox, Stream s);
int launchGeluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   bool tanhApprox, Stream s);
int launchTanh(const float *x, float *y, int64_t n, Stream s);
int launchTanhGrad(const float *y, const float *dy, float *dx, int64_t n,
                   Stream s);
int launchRelu(const float *x, float *y, int64_t n, Stream s);
int launchReluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   Stream s);
int launchSilu(const float *x, float *y, int64_t n, Stream s);
int launchSiluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   Stream s);
// y[r, :] = bias for every one of `rows` rows of width n.
int launchBroadcastRows(const float *bias, float *y, int64_t rows, int64_t n,
                        Stream s);

// --- bf16.cu ----------------------------------------------------------------
// y[i] = x[i] as bfloat16 bits (nearest, ties to even; the CPU backend's
// rounding bit for bit).
int launchToBf16(const float *x, uint16_t *y, int64_t n, Stream s);

// --- optimizer.cu -----------------------------------------------------------
int launchSgd(float *p, const float *g, int64_t n, float lr, float wd,
              Stream s);
struct AdamScalars {
  float decay, b1, oneB1, b2, oneB2, stepSize, bc2Sqrt, eps;
};
int launchAdamw(float *p, const float *g, float *m, float *v, int64_t n,
                AdamScalars k, Stream s);

// --- dropout.cu -------------------------------------------------------------
struct DropoutAddress {
  int rank = 0;
  int64_t localShape[kMaxDims] = {};
  int64_t offset[kMaxDims] = {};
  int64_t globalStride[kMaxDims] = {}; // row-major strides of global_shape
};
// y = x / keep where (philox word >> 8) >= threshold, else 0 (docs/kernels.md);
// plus residual[i] when residual is not null (dropout_add).
int launchDropout(const float *x, const float *residual, float *y, int64_t n,
                  const DropoutAddress &addr, uint64_t seed, uint64_t step,
                  uint32_t opId, uint32_t threshold, float keep, Stream s);

// --- column_sums.cu ---------------------------------------------------------
// Deterministic column sums of x[rows, cols]: rows are cut into fixed chunks
// whose partial sums (scratch: columnSumsScratch floats) are added in order.
int64_t columnSumsScratch(int64_t rows, int64_t cols);
int launchColumnSums(const float *x, int64_t rows, int64_t cols, float *out,
                     float *scratch, Stream s);
// dgamma[j] = Σ_r dy[r,j]·(x[r,j]−mean[r])·rstd[r]; dbeta[j] = Σ_r dy[r,j].
// scratch: 2·columnSumsScratch floats.
int launchLayerNormParamGrad(const float *x, const float *dy, const float *mean,
                             const float *rstd, int64_t rows, int64_t h,
                             float *dgamma, float *dbeta, float *scratch,
                             Stream s);

// --- rows.cu ----------------------------------------------------------------
// layer_norm; also writes each row's mean and rstd when those are non-null.
int launchLayerNorm(const float *x, const float *gamma, const float *beta,
                    float *y, int64_t rows, int64_t h, float eps, float *mean,
                    float *rstd, Stream s);
// layer_norm_grad's dx; writes mean and rstd per row for the parameter grads.
int launchLayerNormGradInput(const float *x, const float *gamma,
                             const float *dy, float *dx, int64_t rows,
                             int64_t h, float eps, float *mean, float *rstd,
                             Stream s);
// rms_norm: y = w·(x·rsqrt(mean(x²) + eps)) per row.
int launchRmsNorm(const float *x, const float *w, float *y, int64_t rows,
                  int64_t h, float eps, Stream s);
// rms_norm_grad's dx; writes each row's rsqrt(mean(x²) + eps) to rstd.
int launchRmsNormGradInput(const float *x, const float *w, const float *dy,
                           float *dx, int64_t rows, int64_t h, float eps,
                           float *rstd, Stream s);
// masked_softmax over rows of length sk; mask row b = r / rowsPerBatch (mask
// f32 or i32, or both null); causal: keys beyond q + qOffset (q = r % sq) are
// masked.
int launchMaskedSoftmax(const float *x, const float *maskF32,
                        const int32_t *maskI32, float *y, int64_t rows,
                        int64_t sk, int64_t sq, int64_t rowsPerBatch,
                        bool causal, int64_t qOffset, Stream s);
int launchSoftmaxGrad(const float *y, const float *dy, float *dx, int64_t rows,
                      int64_t n, Stream s);
// cross_entropy: loss[0] = Σ_r (lse_r − logits[r, labels[r]]) / (denom·count)
// over the rows whose label is not `ignore`, the row terms (scratch: rows
// doubles) added in order; the gradient of an ignored row is 0. `count` (one
// float; null: 1) <= 0 gives a loss of 0 and a zero gradient. badRow (one
// int on the device, set to rows before the call) receives the lowest row
// whose label is neither `ignore` nor inside [0, n).
int launchCrossEntropy(const float *logits, const int32_t *labels, int64_t rows,
                       int64_t n, double denom, const float *count,
                       int64_t ignore, float *loss, double *scratch,
                       int32_t *badRow, Stream s);
int launchCrossEntropyGrad(const float *logits, const int32_t *labels,
                           const float *dloss, int64_t rows, int64_t n,
                           double denom, const float *count, int64_t ignore,
                           float *dlogits, int32_t *badRow, Stream s);

// --- tokens.cu --------------------------------------------------------------
int launchEmbedding(const float *table, int64_t v, int64_t h,
                    const int32_t *ids, int64_t rows, int64_t vocabOffset,
                    float *y, Stream s);
// Deterministic: ids are stably sorted (scratch from embeddingGradScratch
// bytes), then each id's rows are added in row order.
int64_t embeddingGradScratch(int64_t rows);
// dtable = beta·dtable + alpha·scatter(dy) (beta 0: the plain gradient).
int launchEmbeddingGrad(const int32_t *ids, const float *dy, int64_t rows,
                        int64_t v, int64_t h, int64_t vocabOffset,
                        int64_t paddingIdx, float alpha, float beta,
                        float *dtable, void *scratch, int64_t scratchBytes,
                        Stream s);
// y[b, :] = x[b, p_b, :]; grad: dx = 0, dx[b, p_b, :] = dy[b, :], with
// p_b = indices[b] (indices [B] i32) or `index` when indices is null. A row
// whose p_b lies outside [0, s_) reads and writes nothing (y row 0) and is
// recorded in badRow (atomicMin; set to b before the call).
int launchTakeToken(const float *x, float *y, int64_t b, int64_t s_, int64_t h,
                    int64_t index, const int32_t *indices, int32_t *badRow,
                    Stream s);
int launchTakeTokenGrad(const float *dy, float *dx, int64_t b, int64_t s_,
                        int64_t h, int64_t index, const int32_t *indices,
                        int32_t *badRow, Stream s);
// [B,S,n,d] <-> [B,n,S,d] over 4-byte elements (f32 or i32).
int launchHeadsCopy(const void *x, void *y, int64_t b, int64_t nh, int64_t s_,
                    int64_t d, bool toHeads, Stream s);
// repeat_kv: y[b, h] = x[b, (h + headOffset) / groups] over heads of
// block = S·d floats; grad: dx[b, o] = Σ dy[b, h] over the h that map to o
// (0 when none).
int launchRepeatKv(const float *x, float *y, int64_t b, int64_t nkv, int64_t n,
                   int64_t block, int64_t groups, int64_t headOffset, Stream s);
int launchRepeatKvGrad(const float *dy, float *dx, int64_t b, int64_t nkv,
                       int64_t n, int64_t block, int64_t groups,
                       int64_t headOffset, Stream s);
// rope over rows of d (rows = B·n·S, position = row % s_ + offset);
// runtime/cpu/rope_angles.h's formulas.
int launchRope(const float *x, float *y, int64_t rows, int64_t s_, int64_t d,
               double theta, bool inverse, int64_t offset, Stream s);

} // namespace galaxy::rt::cuda
