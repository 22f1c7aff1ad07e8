// sgd_update and adamw_update: in place on param (and Adam's m, v), as
// torch.optim does.
#include <cmath>

#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {
namespace {

absl::Status checkSameSize(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  for (const Tensor &t : c.in)
    if (t.numel() != c.in[0].numel())
      return kernelError(c, "all inputs must have param's size");
  return absl::OkStatus();
}

} // namespace

absl::Status sgdUpdateKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 0));
  GALAXY_CPU_RETURN_IF_ERROR(checkSameSize(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double lr_d, floatAttr(c, "lr"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double wd_d, floatAttr(c, "weight_decay"));
  const float lr = static_cast<float>(lr_d), wd = static_cast<float>(wd_d);
  float *p = c.in[0].f32();
  const float *g = c.in[1].f32();
  parallelChunks(c.in[0].numel(), 3, c.env.threads, [&](int64_t b, int64_t e) {
    sgdSpan(p + b, g + b, e - b, lr, wd);
  });
  return absl::OkStatus();
}

absl::Status adamwUpdateKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 4, 4, 0));
  GALAXY_CPU_RETURN_IF_ERROR(checkSameSize(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double lr, floatAttr(c, "lr"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double beta1, floatAttr(c, "beta1"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double beta2, floatAttr(c, "beta2"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double eps, floatAttr(c, "eps"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double wd, floatAttr(c, "weight_decay"));
  if (c.ctx.step < 1)
    return kernelError(
        c, absl::StrFormat("needs KernelContext.step >= 1 (1-based), got %d",
                           c.ctx.step));
  // Scalars as torch computes them (in double), then the f32 update.
  const double t = static_cast<double>(c.ctx.step);
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
  const float bc2_sqrt =
      static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const float one_b1 = static_cast<float>(1.0 - beta1),
              one_b2 = static_cast<float>(1.0 - beta2);
  const float e = static_cast<float>(eps);
  float *p = c.in[0].f32(), *m = c.in[2].f32(), *v = c.in[3].f32();
  const float *g = c.in[1].f32();
  parallelChunks(c.in[0].numel(), 12, c.env.threads,
                 [&](int64_t b, int64_t end) {
                   adamwSpan(p + b, g + b, m + b, v + b, end - b, decay, b1,
                             one_b1, b2, one_b2, step_size, bc2_sqrt, e);
                 });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
