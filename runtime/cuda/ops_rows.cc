// split_heads, merge_heads (+ merge_heads_bias_grad), repeat_kv(+grad), rope,
// masked_softmax, softmax_grad, layer_norm(+grad), rms_norm(+grad),
// cross_entropy(+grad).
#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cuda/cuda_ops.h"
#include "runtime/cuda/cuda_status.h"

namespace galaxy::rt::cuda {
namespace {

using cpu::checkArity;
using cpu::checkDtype;
using cpu::kernelError;
using cpu::rowCount;

absl::Status headsCopy(const CudaOp &op, bool toHeads) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  const Tensor &x = c.in[0], &y = c.out[0];
  const Tensor &flat = toHeads ? x : y, &heads = toHeads ? y : x;
  if (flat.shape.size() != 3 || heads.shape.size() != 4 ||
      flat.shape[0] != heads.shape[0] || flat.shape[1] != heads.shape[2] ||
      flat.shape[2] != heads.shape[1] * heads.shape[3] || x.dtype != y.dtype)
    return kernelError(c, "needs [B,S,n*d] and [B,n,S,d] of one dtype");
  return launched(op, launchHeadsCopy(x.data, y.data, heads.shape[0],
                                      heads.shape[1], heads.shape[2],
                                      heads.shape[3], toHeads, op.env.stream));
}

absl::Status checkCrossEntropyShapes(const cpu::KernelCall &c) {
  const Tensor &logits = c.in[0], &labels = c.in[1];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, logits, plan::F32, "logits"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, labels, plan::I32, "labels"));
  if (logits.shape.empty() || labels.numel() != rowCount(logits))
    return kernelError(c, "logits must be [...,C] and labels [...]");
  return absl::OkStatus();
}

// A label outside [0, classes) (one cross-entropy call's check; see
// firstBadRow).
absl::Status checkBadRow(const CudaOp &op, int64_t rows, int64_t classes) {
  constexpr const char *kWhat = "cross-entropy label check";
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t bad, firstBadRow(op, kWhat));
  if (bad >= rows)
    return absl::OkStatus();
  GALAXY_CUDA_ASSIGN_OR_RETURN(int32_t label,
                               deviceI32At(op, op.c.in[1].i32(), bad, kWhat));
  return kernelError(op.c, absl::StrFormat("labels[%d]=%d outside [0,%d)", bad,
                                           label, classes));
}

// cross_entropy(_grad)'s optional count input at `at` (null when absent):
// one f32 on the device, read by the kernels.
absl::StatusOr<const float *> countInput(const cpu::KernelCall &c, size_t at) {
  if (c.in.size() <= at)
    return nullptr;
  const Tensor &count = c.in[at];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, count, plan::F32, "count"));
  if (count.numel() != 1)
    return kernelError(c, "count must have one element");
  return count.f32();
}

} // namespace

absl::Status splitHeadsOp(const CudaOp &op) { return headsCopy(op, true); }

// merge_heads, then bias_grad's column sums of its result (galaxy-fuse).
absl::Status mergeHeadsBiasGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 2));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &x = c.in[0], &y = c.out[0], &db = c.out[1];
  if (y.shape.size() != 3 || x.shape.size() != 4 || y.shape[0] != x.shape[0] ||
      y.shape[1] != x.shape[2] || y.shape[2] != x.shape[1] * x.shape[3] ||
      db.numel() != y.shape[2])
    return kernelError(c, "needs [B,n,S,d] -> [B,S,n*d] and [n*d]");
  GALAXY_CUDA_RETURN_IF_ERROR(launched(
      op, launchHeadsCopy(x.data, y.data, x.shape[0], x.shape[1], x.shape[2],
                          x.shape[3], false, op.env.stream)));
  return columnSumsInto(op, y.f32(), y.shape[0] * y.shape[1], y.shape[2],
                        db.f32());
}
absl::Status mergeHeadsOp(const CudaOp &op) { return headsCopy(op, false); }

absl::Status repeatKvOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t groups, cpu::intAttr(c, "groups"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t offset, cpu::intAttr(c, "head_offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkRepeatKv(c, x, y, groups, offset));
  return launched(op, launchRepeatKv(x.f32(), y.f32(), y.shape[0], x.shape[1],
                                     y.shape[1], y.shape[2] * y.shape[3],
                                     groups, offset, op.env.stream));
}

absl::Status repeatKvGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t groups, cpu::intAttr(c, "groups"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t offset, cpu::intAttr(c, "head_offset"));
  const Tensor &dy = c.in[0], &dx = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkRepeatKv(c, dx, dy, groups, offset));
  return launched(op, launchRepeatKvGrad(dy.f32(), dx.f32(), dx.shape[0],
                                         dx.shape[1], dy.shape[1],
                                         dy.shape[2] * dy.shape[3], groups,
                                         offset, op.env.stream));
}

absl::Status ropeOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double theta, cpu::floatAttr(c, "theta"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t inverse, cpu::intAttr(c, "inverse"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t offset, cpu::intAttr(c, "offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  if (x.shape.size() != 4 || x.shape != y.shape || x.shape[3] % 2 != 0)
    return kernelError(c, "x and y must be one shape [B,n,S,d] with d even");
  return launched(op, launchRope(x.f32(), y.f32(), rowCount(x), x.shape[2],
                                 x.shape[3], theta, inverse != 0, offset,
                                 op.env.stream));
}

absl::Status maskedSoftmaxOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 2, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t causal, cpu::intAttr(c, "causal"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t qOffset, cpu::intAttr(c, "q_offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  const Tensor *mask = c.in.size() == 2 ? &c.in[1] : nullptr;
  if (x.shape.size() < 2 || x.shape != y.shape || x.dtype != plan::F32 ||
      y.dtype != plan::F32)
    return kernelError(c, "x and y must be f32 of one shape [...,Sq,Sk]");
  const size_t rank = x.shape.size();
  const int64_t sk = x.shape[rank - 1], sq = x.shape[rank - 2],
                rows = rowCount(x);
  int64_t rowsPerBatch = rows > 0 ? rows : 1; // rows sharing one mask row
  if (mask) {
    if (rank != 4 || mask->numel() != x.shape[0] * sk)
      return kernelError(c,
                         "with a mask, x must be [B,n,Sq,Sk] and mask [B,Sk]");
    rowsPerBatch = x.shape[1] * sq;
  }
  const bool i32 = mask && mask->dtype == plan::I32;
  return launched(op, launchMaskedSoftmax(
                          x.f32(), mask && !i32 ? mask->f32() : nullptr,
                          i32 ? mask->i32() : nullptr, y.f32(), rows, sk, sq,
                          rowsPerBatch, causal != 0, qOffset, op.env.stream));
}

absl::Status softmaxGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &y = c.in[0], &dy = c.in[1], &dx = c.out[0];
  if (y.shape.empty() || y.shape != dy.shape || y.shape != dx.shape)
    return kernelError(c, "y, dy and dx must have one shape");
  return launched(op,
                  launchSoftmaxGrad(y.f32(), dy.f32(), dx.f32(), rowCount(y),
                                    y.shape.back(), op.env.stream));
}

absl::Status layerNormOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 3, 3, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double eps, cpu::floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &gamma = c.in[1], &beta = c.in[2], &y = c.out[0];
  if (x.shape.empty() || x.shape != y.shape ||
      gamma.numel() != x.shape.back() || beta.numel() != x.shape.back())
    return kernelError(c,
                       "x[...,H] and y must match and gamma, beta must be [H]");
  return launched(op, launchLayerNorm(x.f32(), gamma.f32(), beta.f32(), y.f32(),
                                      rowCount(x), x.shape.back(),
                                      static_cast<float>(eps), nullptr, nullptr,
                                      op.env.stream));
}

absl::Status layerNormGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 3, 3, 3));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double eps, cpu::floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &gamma = c.in[1], &dy = c.in[2];
  const Tensor &dx = c.out[0], &dgamma = c.out[1], &dbeta = c.out[2];
  if (x.shape.empty() || x.shape != dy.shape || x.shape != dx.shape ||
      gamma.numel() != x.shape.back() || dgamma.numel() != x.shape.back() ||
      dbeta.numel() != x.shape.back())
    return kernelError(
        c, "x, dy, dx must be one shape [...,H] and gamma, dgamma, dbeta [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  // Scratch: mean[rows], rstd[rows], then the column-sum partials.
  const int64_t floats = 2 * rows + 2 * columnSumsScratch(rows, h);
  GALAXY_CUDA_ASSIGN_OR_RETURN(void *raw,
                               op.env.scratch->get(floats * sizeof(float)));
  float *mean = static_cast<float *>(raw), *rstd = mean + rows;
  GALAXY_CUDA_RETURN_IF_ERROR(launched(
      op, launchLayerNormGradInput(x.f32(), gamma.f32(), dy.f32(), dx.f32(),
                                   rows, h, static_cast<float>(eps), mean, rstd,
                                   op.env.stream)));
  // Frozen gamma/beta (param_grads = 0): dgamma, dbeta are not needed.
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t paramGrads,
                               cpu::intAttr(c, "param_grads"));
  if (!paramGrads)
    return absl::OkStatus();
  return launched(op, launchLayerNormParamGrad(
                          x.f32(), dy.f32(), mean, rstd, rows, h, dgamma.f32(),
                          dbeta.f32(), rstd + rows, op.env.stream));
}

absl::Status rmsNormOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double eps, cpu::floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (x.shape.empty() || x.shape != y.shape || w.numel() != x.shape.back())
    return kernelError(c, "x[...,H] and y must match and weight must be [H]");
  return launched(op, launchRmsNorm(x.f32(), w.f32(), y.f32(), rowCount(x),
                                    x.shape.back(), static_cast<float>(eps),
                                    op.env.stream));
}

absl::Status rmsNormGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 3, 3, 2));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double eps, cpu::floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &w = c.in[1], &dy = c.in[2];
  const Tensor &dx = c.out[0], &dw = c.out[1];
  if (x.shape.empty() || x.shape != dy.shape || x.shape != dx.shape ||
      w.numel() != x.shape.back() || dw.numel() != x.shape.back())
    return kernelError(
        c, "x, dy, dx must be one shape [...,H] and weight, dweight [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  // Scratch: zeros[rows] (a mean of 0), rstd[rows], an unused column sum [h],
  // then the column-sum partials.
  const int64_t floats = 2 * rows + h + 2 * columnSumsScratch(rows, h);
  GALAXY_CUDA_ASSIGN_OR_RETURN(void *raw,
                               op.env.scratch->get(floats * sizeof(float)));
  float *zeros = static_cast<float *>(raw), *rstd = zeros + rows;
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchRmsNormGradInput(x.f32(), w.f32(), dy.f32(), dx.f32(),
                                          rows, h, static_cast<float>(eps),
                                          rstd, op.env.stream)));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t paramGrads,
                               cpu::intAttr(c, "param_grads"));
  if (!paramGrads) // frozen weight: dweight is not needed
    return absl::OkStatus();
  // dweight[j] = Σ_r dy·x·rstd[r]: layer_norm's dgamma with a mean of 0.
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchFillF32(zeros, rows, 0.f, op.env.stream)));
  return launched(op, launchLayerNormParamGrad(x.f32(), dy.f32(), zeros, rstd,
                                               rows, h, dw.f32(), rstd + rows,
                                               rstd + rows + h, op.env.stream));
}

absl::Status crossEntropyOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 3, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double denom, cpu::floatAttr(c, "denominator"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t ignore, cpu::intAttr(c, "ignore_index"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkCrossEntropyShapes(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(const float *count, countInput(c, 2));
  const Tensor &logits = c.in[0], &loss = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, loss, plan::F32, "loss"));
  if (loss.numel() != 1)
    return kernelError(c, "loss must have one element");
  const int64_t n = logits.shape.back(), rows = rowCount(logits);
  GALAXY_CUDA_ASSIGN_OR_RETURN(void *terms,
                               op.env.scratch->get(rows * sizeof(double)));
  GALAXY_CUDA_RETURN_IF_ERROR(resetBadRow(op, rows));
  GALAXY_CUDA_RETURN_IF_ERROR(launched(
      op, launchCrossEntropy(logits.f32(), c.in[1].i32(), rows, n, denom, count,
                             ignore, loss.f32(), static_cast<double *>(terms),
                             op.env.badRow, op.env.stream)));
  return checkBadRow(op, rows, n);
}

absl::Status crossEntropyGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 3, 4, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double denom, cpu::floatAttr(c, "denominator"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t ignore, cpu::intAttr(c, "ignore_index"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkCrossEntropyShapes(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(const float *count, countInput(c, 3));
  const Tensor &logits = c.in[0], &dloss = c.in[2], &dlogits = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, dloss, plan::F32, "dloss"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, dlogits, plan::F32, "dlogits"));
  if (dloss.numel() != 1 || dlogits.shape != logits.shape)
    return kernelError(
        c, "dloss must have one element and dlogits the shape of logits");
  const int64_t n = logits.shape.back(), rows = rowCount(logits);
  GALAXY_CUDA_RETURN_IF_ERROR(resetBadRow(op, rows));
  GALAXY_CUDA_RETURN_IF_ERROR(launched(
      op, launchCrossEntropyGrad(logits.f32(), c.in[1].i32(), dloss.f32(), rows,
                                 n, denom, count, ignore, dlogits.f32(),
                                 op.env.badRow, op.env.stream)));
  return checkBadRow(op, rows, n);
}

} // namespace galaxy::rt::cuda
