// fill, iota, add, mul, scale, gelu, relu, silu, tanh (each +grad), dropout
// (and its fused dropout_add, dropout_bias_grad), sgd_update, adamw_update.
#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cuda/cuda_ops.h"
#include "runtime/cuda/cuda_status.h"

namespace galaxy::rt::cuda {
namespace {

using cpu::checkArity;
using cpu::checkDtype;
using cpu::kernelError;

// Unary or binary f32 map with identical shapes.
absl::Status checkMap(const cpu::KernelCall &c, size_t nIn) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, nIn, nIn, 1));
  for (const Tensor &t : c.in) {
    if (t.shape != c.out[0].shape)
      return kernelError(c,
                         "all inputs and the output must have the same shape");
    GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, t, plan::F32, "input"));
  }
  return checkDtype(c, c.out[0], plan::F32, "output");
}

absl::StatusOr<bool> tanhApprox(const cpu::KernelCall &c) {
  GALAXY_CUDA_ASSIGN_OR_RETURN(std::string a,
                               cpu::stringAttr(c, "approximate"));
  if (a == "none" || a == "tanh")
    return a == "tanh";
  return kernelError(
      c, absl::StrFormat("attribute approximate='%s' must be none or tanh", a));
}

absl::Status checkSameSize(const cpu::KernelCall &c) {
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  for (const Tensor &t : c.in)
    if (t.numel() != c.in[0].numel())
      return kernelError(c, "all inputs must have param's size");
  return absl::OkStatus();
}

} // namespace

absl::Status fillOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 0, 0, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double value, cpu::floatAttr(c, "value"));
  const Tensor &y = c.out[0];
  if (y.dtype == plan::I32)
    return launched(op,
                    launchFillI32(y.i32(), y.numel(),
                                  static_cast<int32_t>(value), op.env.stream));
  return launched(op, launchFillF32(y.f32(), y.numel(),
                                    static_cast<float>(value), op.env.stream));
}

absl::Status iotaOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 0, 0, 1));
  const Tensor &y = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, y, plan::I32, "output"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t dim, cpu::intAttr(c, "dim"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t offset, cpu::intAttr(c, "offset"));
  const int64_t rank = static_cast<int64_t>(y.shape.size());
  if (dim < 0 || dim >= rank)
    return kernelError(
        c, absl::StrFormat("attribute dim=%d outside the output's rank %d", dim,
                           rank));
  int64_t stride = 1;
  for (int64_t d = dim + 1; d < rank; ++d)
    stride *= y.shape[d];
  return launched(op, launchIota(y.i32(), y.numel(), stride, y.shape[dim],
                                 offset, op.env.stream));
}

absl::Status addOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  return launched(op, launchAdd(op.c.in[0].f32(), op.c.in[1].f32(),
                                op.c.out[0].f32(), op.c.out[0].numel(),
                                op.env.stream));
}

absl::Status mulOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  return launched(op, launchMul(op.c.in[0].f32(), op.c.in[1].f32(),
                                op.c.out[0].f32(), op.c.out[0].numel(),
                                op.env.stream));
}

absl::Status scaleOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double alpha, cpu::floatAttr(op.c, "alpha"));
  return launched(op, launchScale(op.c.in[0].f32(), op.c.out[0].f32(),
                                  op.c.out[0].numel(),
                                  static_cast<float>(alpha), op.env.stream));
}

absl::Status geluOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(bool approx, tanhApprox(op.c));
  return launched(op, launchGelu(op.c.in[0].f32(), op.c.out[0].f32(),
                                 op.c.out[0].numel(), approx, op.env.stream));
}

absl::Status geluGradOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  GALAXY_CUDA_ASSIGN_OR_RETURN(bool approx, tanhApprox(op.c));
  return launched(op, launchGeluGrad(op.c.in[0].f32(), op.c.in[1].f32(),
                                     op.c.out[0].f32(), op.c.out[0].numel(),
                                     approx, op.env.stream));
}

// gelu_grad, then bias_grad's column sums of its result (galaxy-fuse).
absl::Status geluGradBiasGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 2));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &x = c.in[0], &dy = c.in[1], &dx = c.out[0], &db = c.out[1];
  if (x.shape != dy.shape || dx.shape != dy.shape || dy.shape.empty())
    return kernelError(c, "x, dy and dx must have one shape [..., N]");
  GALAXY_CUDA_RETURN_IF_ERROR(checkBiasGrad(c, dy, db));
  const int64_t n = dy.shape.back(), rows = dy.numel() / (n ? n : 1);
  GALAXY_CUDA_ASSIGN_OR_RETURN(bool approx, tanhApprox(c));
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchGeluGrad(x.f32(), dy.f32(), dx.f32(), dx.numel(),
                                  approx, op.env.stream)));
  return columnSumsInto(op, dx.f32(), rows, n, db.f32());
}

absl::Status reluOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 1));
  return launched(op, launchRelu(op.c.in[0].f32(), op.c.out[0].f32(),
                                 op.c.out[0].numel(), op.env.stream));
}

absl::Status reluGradOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  return launched(op, launchReluGrad(op.c.in[0].f32(), op.c.in[1].f32(),
                                     op.c.out[0].f32(), op.c.out[0].numel(),
                                     op.env.stream));
}

absl::Status siluOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 1));
  return launched(op, launchSilu(op.c.in[0].f32(), op.c.out[0].f32(),
                                 op.c.out[0].numel(), op.env.stream));
}

absl::Status siluGradOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  return launched(op, launchSiluGrad(op.c.in[0].f32(), op.c.in[1].f32(),
                                     op.c.out[0].f32(), op.c.out[0].numel(),
                                     op.env.stream));
}

absl::Status tanhOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 1));
  return launched(op, launchTanh(op.c.in[0].f32(), op.c.out[0].f32(),
                                 op.c.out[0].numel(), op.env.stream));
}

absl::Status tanhGradOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkMap(op.c, 2));
  return launched(op, launchTanhGrad(op.c.in[0].f32(), op.c.in[1].f32(),
                                     op.c.out[0].f32(), op.c.out[0].numel(),
                                     op.env.stream));
}

namespace {
// y = dropout(x) (+ residual where not null): dropout and dropout_add. x is
// in[0], y out[0].
absl::Status dropoutInto(const CudaOp &op, const float *residual) {
  const cpu::KernelCall &c = op.c;
  const Tensor &x = c.in[0], &y = c.out[0];
  if (x.shape != y.shape)
    return kernelError(c, "x and y must have one shape");
  GALAXY_CUDA_ASSIGN_OR_RETURN(double p, cpu::floatAttr(c, "p"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t opId, cpu::intAttr(c, "op_id"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(std::vector<int64_t> global,
                               cpu::intsAttr(c, "global_shape"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(std::vector<int64_t> offset,
                               cpu::intsAttr(c, "offset"));
  if (!(p >= 0.0 && p <= 1.0))
    return kernelError(c, absl::StrFormat("attribute p=%g outside [0,1]", p));
  const int64_t total = x.numel();
  cudaStream_t st = static_cast<cudaStream_t>(op.env.stream);
  if (!c.ctx.training || p == 0.0) {
    if (residual && total != 0)
      return launched(
          op, launchAdd(x.f32(), residual, y.f32(), total, op.env.stream));
    if (x.data == y.data || total == 0)
      return absl::OkStatus();
    return cudaStatus(cudaMemcpyAsync(y.data, x.data, total * sizeof(float),
                                      cudaMemcpyDeviceToDevice, st),
                      "dropout (identity copy)");
  }
  const size_t rank = x.shape.size();
  if (global.empty())
    global = x.shape;
  if (offset.empty())
    offset.assign(rank, 0);
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::placeInGlobalBatch(c, global, offset));
  if (global.size() != rank || offset.size() != rank)
    return kernelError(
        c, absl::StrFormat("global_shape %s and offset %s need x's rank %d",
                           cpu::shapeString(global), cpu::shapeString(offset),
                           rank));
  if (rank > static_cast<size_t>(kMaxDims))
    return kernelError(c, absl::StrFormat("the CUDA backend's dropout takes at "
                                          "most %d dims",
                                          kMaxDims));
  DropoutAddress addr;
  addr.rank = static_cast<int>(rank);
  int64_t stride = 1;
  for (size_t d = rank; d-- > 0;) {
    if (offset[d] < 0 || offset[d] + x.shape[d] > global[d])
      return kernelError(
          c,
          absl::StrFormat("the block at offset %s does not fit in "
                          "global_shape %s",
                          cpu::shapeString(offset), cpu::shapeString(global)));
    addr.localShape[d] = x.shape[d];
    addr.offset[d] = offset[d];
    addr.globalStride[d] = stride;
    stride *= global[d];
  }
  if (total == 0)
    return absl::OkStatus();
  // The CPU's exact integer test: u >= p  <=>  (word >> 8) >= ceil(p·2^24).
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(p * 16777216.0));
  const float keep = static_cast<float>(1.0 - p);
  return launched(op,
                  launchDropout(x.f32(), residual, y.f32(), total, addr,
                                c.ctx.seed, static_cast<uint64_t>(c.ctx.step),
                                static_cast<uint32_t>(opId), threshold, keep,
                                op.env.stream));
}
} // namespace

absl::Status dropoutOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(op.c, 1, 1, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(op.c));
  return dropoutInto(op, nullptr);
}

// add(dropout(x), r) in one pass (galaxy-fuse).
absl::Status dropoutAddOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  if (c.in[1].shape != c.out[0].shape)
    return kernelError(c, "the residual must have the output's shape");
  return dropoutInto(op, c.in[1].f32());
}

// dy' = dropout(dy), db = bias_grad's column sums of dy' (galaxy-fuse).
absl::Status dropoutBiasGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 2));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &dy = c.out[0], &db = c.out[1];
  GALAXY_CUDA_RETURN_IF_ERROR(checkBiasGrad(c, dy, db));
  const int64_t n = dy.shape.back(), rows = dy.numel() / (n ? n : 1);
  GALAXY_CUDA_RETURN_IF_ERROR(dropoutInto(op, nullptr));
  return columnSumsInto(op, dy.f32(), rows, n, db.f32());
}

absl::Status sgdUpdateOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 0));
  GALAXY_CUDA_RETURN_IF_ERROR(checkSameSize(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double lr, cpu::floatAttr(c, "lr"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double wd, cpu::floatAttr(c, "weight_decay"));
  return launched(op, launchSgd(c.in[0].f32(), c.in[1].f32(), c.in[0].numel(),
                                static_cast<float>(lr), static_cast<float>(wd),
                                op.env.stream));
}

absl::Status adamwUpdateOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 4, 4, 0));
  GALAXY_CUDA_RETURN_IF_ERROR(checkSameSize(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double lr, cpu::floatAttr(c, "lr"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double beta1, cpu::floatAttr(c, "beta1"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double beta2, cpu::floatAttr(c, "beta2"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double eps, cpu::floatAttr(c, "eps"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double wd, cpu::floatAttr(c, "weight_decay"));
  if (c.ctx.step < 1)
    return kernelError(
        c, absl::StrFormat("needs KernelContext.step >= 1 (1-based), got %d",
                           c.ctx.step));
  // Step scalars in double, as torch (and the CPU backend) computes them.
  const double t = static_cast<double>(c.ctx.step);
  AdamScalars k;
  k.decay = static_cast<float>(1.0 - lr * wd);
  k.stepSize = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
  k.bc2Sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
  k.b1 = static_cast<float>(beta1);
  k.b2 = static_cast<float>(beta2);
  k.oneB1 = static_cast<float>(1.0 - beta1);
  k.oneB2 = static_cast<float>(1.0 - beta2);
  k.eps = static_cast<float>(eps);
  return launched(op, launchAdamw(c.in[0].f32(), c.in[1].f32(), c.in[2].f32(),
                                  c.in[3].f32(), c.in[0].numel(), k,
                                  op.env.stream));
}

} // namespace galaxy::rt::cuda
