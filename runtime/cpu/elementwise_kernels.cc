// fill, iota, add, mul, scale, gelu(+grad, + gelu_grad_bias_grad), tanh(+grad):
// flat loops over all elements.
#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {
namespace {

// Runs f(i) for every element, split over threads when large; `cost` ~ scalar
// ops per element.
template <typename F>
void forEach(const CpuEnv &env, int64_t n, int64_t cost, F f) {
  parallelChunks(n, cost, env.threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      f(i);
  });
}

absl::Status sameShapes(const KernelCall &c) {
  const auto &s = c.out.empty() ? c.in[0].shape : c.out[0].shape;
  for (const Tensor &t : c.in)
    if (t.shape != s)
      return kernelError(c,
                         "all inputs and the output must have the same shape");
  return absl::OkStatus();
}

// Unary or binary f32 map with identical shapes.
absl::Status checkMap(const KernelCall &c, size_t n_in) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, n_in, n_in, 1));
  GALAXY_CPU_RETURN_IF_ERROR(sameShapes(c));
  for (const Tensor &t : c.in)
    GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, t, plan::F32, "input"));
  return checkDtype(c, c.out[0], plan::F32, "output");
}

absl::StatusOr<bool> tanhApprox(const KernelCall &c) {
  GALAXY_CPU_ASSIGN_OR_RETURN(std::string a, stringAttr(c, "approximate"));
  if (a == "none")
    return false;
  if (a == "tanh")
    return true;
  return kernelError(
      c, absl::StrFormat("attribute approximate='%s' must be none or tanh", a));
}

} // namespace

absl::Status fillKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 0, 0, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(double value, floatAttr(c, "value"));
  const Tensor &y = c.out[0];
  if (y.dtype == plan::I32) {
    int32_t *p = y.i32();
    const int32_t v = static_cast<int32_t>(value);
    forEach(c.env, y.numel(), 1, [&](int64_t i) { p[i] = v; });
  } else {
    float *p = y.f32();
    const float v = static_cast<float>(value);
    forEach(c.env, y.numel(), 1, [&](int64_t i) { p[i] = v; });
  }
  return absl::OkStatus();
}

absl::Status iotaKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 0, 0, 1));
  const Tensor &y = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, y, plan::I32, "output"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t dim, intAttr(c, "dim"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t offset, intAttr(c, "offset"));
  const int64_t rank = static_cast<int64_t>(y.shape.size());
  if (dim < 0 || dim >= rank)
    return kernelError(
        c, absl::StrFormat("attribute dim=%d outside the output's rank %d", dim,
                           rank));
  int64_t stride = 1;
  for (int64_t d = dim + 1; d < rank; ++d)
    stride *= y.shape[d];
  const int64_t size = y.shape[dim];
  int32_t *p = y.i32();
  forEach(c.env, y.numel(), 2, [&](int64_t i) {
    p[i] = static_cast<int32_t>((i / stride) % size + offset);
  });
  return absl::OkStatus();
}

absl::Status addKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  const float *a = c.in[0].f32(), *b = c.in[1].f32();
  float *y = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1, [&](int64_t i) { y[i] = a[i] + b[i]; });
  return absl::OkStatus();
}

absl::Status mulKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  const float *a = c.in[0].f32(), *b = c.in[1].f32();
  float *y = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1, [&](int64_t i) { y[i] = a[i] * b[i]; });
  return absl::OkStatus();
}

absl::Status scaleKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(double alpha_d, floatAttr(c, "alpha"));
  const float alpha = static_cast<float>(alpha_d);
  const float *x = c.in[0].f32();
  float *y = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1, [&](int64_t i) { y[i] = alpha * x[i]; });
  return absl::OkStatus();
}

absl::Status geluKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(bool approx, tanhApprox(c));
  const float *x = c.in[0].f32();
  float *y = c.out[0].f32();
  parallelChunks(
      c.out[0].numel(), 20, c.env.threads,
      [&](int64_t b, int64_t e) { geluSpan(x + b, y + b, e - b, approx); });
  return absl::OkStatus();
}

absl::Status geluGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  GALAXY_CPU_ASSIGN_OR_RETURN(bool approx, tanhApprox(c));
  const float *x = c.in[0].f32(), *dy = c.in[1].f32();
  float *dx = c.out[0].f32();
  parallelChunks(c.out[0].numel(), 30, c.env.threads,
                 [&](int64_t b, int64_t e) {
                   geluGradSpan(x + b, dy + b, dx + b, e - b, approx);
                 });
  return absl::OkStatus();
}

// gelu_grad, then bias_grad's column sums of its result (galaxy-fuse).
absl::Status geluGradBiasGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 2));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &x = c.in[0], &dy = c.in[1], &dx = c.out[0], &db = c.out[1];
  if (x.shape != dy.shape || dx.shape != dy.shape || dy.shape.empty())
    return kernelError(c, "x, dy and dx must have one shape [..., N]");
  const int64_t n = dy.shape.back(), rows = rowCount(dy);
  if (db.numel() != n)
    return kernelError(c, "db must be [N] for dy[...,N]");
  GALAXY_CPU_ASSIGN_OR_RETURN(bool approx, tanhApprox(c));
  const float *xp = x.f32(), *dyp = dy.f32();
  float *dxp = dx.f32();
  parallelChunks(dx.numel(), 30, c.env.threads, [&](int64_t b, int64_t e) {
    geluGradSpan(xp + b, dyp + b, dxp + b, e - b, approx);
  });
  columnSums(dxp, rows, n, db.f32(), c.env.threads);
  return absl::OkStatus();
}

absl::Status tanhKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 1));
  const float *x = c.in[0].f32();
  float *y = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 20,
          [&](int64_t i) { y[i] = std::tanh(x[i]); });
  return absl::OkStatus();
}

absl::Status tanhGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  const float *y = c.in[0].f32(), *dy = c.in[1].f32();
  float *dx = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1,
          [&](int64_t i) { dx[i] = dy[i] * (1.f - y[i] * y[i]); });
  return absl::OkStatus();
}

absl::Status reluKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 1));
  const float *x = c.in[0].f32();
  float *y = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1,
          [&](int64_t i) { y[i] = x[i] > 0.f ? x[i] : 0.f; });
  return absl::OkStatus();
}

absl::Status reluGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  const float *x = c.in[0].f32(), *dy = c.in[1].f32();
  float *dx = c.out[0].f32();
  forEach(c.env, c.out[0].numel(), 1,
          [&](int64_t i) { dx[i] = x[i] > 0.f ? dy[i] : 0.f; });
  return absl::OkStatus();
}

// swish / SiLU: x·σ(x).
absl::Status siluKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 1));
  const float *x = c.in[0].f32();
  float *y = c.out[0].f32();
  parallelChunks(c.out[0].numel(), 20, c.env.threads,
                 [&](int64_t b, int64_t e) { siluSpan(x + b, y + b, e - b); });
  return absl::OkStatus();
}

// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
absl::Status siluGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkMap(c, 2));
  const float *x = c.in[0].f32(), *dy = c.in[1].f32();
  float *dx = c.out[0].f32();
  parallelChunks(c.out[0].numel(), 30, c.env.threads,
                 [&](int64_t b, int64_t e) {
                   siluGradSpan(x + b, dy + b, dx + b, e - b);
                 });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
