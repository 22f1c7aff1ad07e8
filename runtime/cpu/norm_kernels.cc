// layer_norm, rms_norm and their exact gradients.
#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {

absl::Status layerNormKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 3, 3, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double eps_d, floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &gamma = c.in[1], &beta = c.in[2], &y = c.out[0];
  if (x.shape.empty() || x.shape != y.shape ||
      gamma.numel() != x.shape.back() || beta.numel() != x.shape.back())
    return kernelError(c,
                       "x[...,H] and y must match and gamma, beta must be [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  const float eps = static_cast<float>(eps_d);
  const float *xp = x.f32(), *g = gamma.f32(), *b = beta.f32();
  float *yp = y.f32();
  parallelChunks(rows, h * 6, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float mu, rstd;
      layerNormRow(xp + r * h, g, b, yp + r * h, h, eps, &mu, &rstd);
    }
  });
  return absl::OkStatus();
}

absl::Status layerNormGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 3, 3, 3));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double eps_d, floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &gamma = c.in[1], &dy = c.in[2];
  const Tensor &dx = c.out[0], &dgamma = c.out[1], &dbeta = c.out[2];
  if (x.shape.empty() || x.shape != dy.shape || x.shape != dx.shape ||
      gamma.numel() != x.shape.back() || dgamma.numel() != x.shape.back() ||
      dbeta.numel() != x.shape.back())
    return kernelError(
        c, "x, dy, dx must be one shape [...,H] and gamma, dgamma, dbeta [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  const float eps = static_cast<float>(eps_d);
  const float *xp = x.f32(), *g = gamma.f32(), *gy = dy.f32();
  float *gx = dx.f32(), *gg = dgamma.f32(), *gb = dbeta.f32();
  std::vector<float> mean(rows), rstd(rows);
  // dx per row: rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)) with dxhat =
  // dy·gamma.
  parallelChunks(rows, h * 10, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      layerNormGradRow(xp + r * h, g, gy + r * h, gx + r * h, h, eps, &mean[r],
                       &rstd[r]);
    }
  });
  // Frozen gamma/beta (param_grads = 0): dgamma, dbeta are not needed.
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t paramGrads, intAttr(c, "param_grads"));
  if (!paramGrads)
    return absl::OkStatus();
  // dgamma, dbeta: threads own column ranges and add rows in order
  // (deterministic).
  parallelChunks(h, rows * 4, c.env.threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      gg[j] = gb[j] = 0.f;
    layerNormParamGradCols(xp, gy, mean.data(), rstd.data(), rows, h, j0, j1,
                           gg, gb);
  });
  return absl::OkStatus();
}

namespace {
// 1/sqrt(mean(x²) + eps) of one row, accumulated in double (a row is at most
// a few thousand elements; the kernel is far from the GEMMs' share of time).
float rmsRstd(const float *x, int64_t h, float eps) {
  double ss = 0;
  for (int64_t j = 0; j < h; ++j)
    ss += double(x[j]) * x[j];
  return 1.f / std::sqrt(static_cast<float>(ss / double(h)) + eps);
}
} // namespace

absl::Status rmsNormKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double eps_d, floatAttr(c, "eps"));
  const Tensor &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (x.shape.empty() || x.shape != y.shape || w.numel() != x.shape.back())
    return kernelError(c, "x[...,H] and y must match and weight must be [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  const float eps = static_cast<float>(eps_d);
  const float *xp = x.f32(), *wp = w.f32();
  float *yp = y.f32();
  parallelChunks(rows, h * 4, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = xp + r * h;
      float *yr = yp + r * h;
      const float rs = rmsRstd(xr, h, eps);
      // Hugging Face's order: normalise, then scale by the weight.
      for (int64_t j = 0; j < h; ++j)
        yr[j] = wp[j] * (xr[j] * rs);
    }
  });
  return absl::OkStatus();
}

absl::Status rmsNormGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 3, 3, 2));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double eps_d, floatAttr(c, "eps"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t paramGrads, intAttr(c, "param_grads"));
  const Tensor &x = c.in[0], &w = c.in[1], &dy = c.in[2];
  const Tensor &dx = c.out[0], &dw = c.out[1];
  if (x.shape.empty() || x.shape != dy.shape || x.shape != dx.shape ||
      w.numel() != x.shape.back() || dw.numel() != x.shape.back())
    return kernelError(
        c, "x, dy, dx must be one shape [...,H] and weight, dweight [H]");
  const int64_t h = x.shape.back(), rows = rowCount(x);
  const float eps = static_cast<float>(eps_d);
  const float *xp = x.f32(), *wp = w.f32(), *gy = dy.f32();
  float *gx = dx.f32(), *gw = dw.f32();
  std::vector<float> rstd(rows);
  // dx = r·g − x·r³·mean(g·x), g = dy·weight.
  parallelChunks(rows, h * 6, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = xp + r * h, *dyr = gy + r * h;
      float *o = gx + r * h;
      const float rs = rmsRstd(xr, h, eps);
      rstd[r] = rs;
      double gx_sum = 0;
      for (int64_t j = 0; j < h; ++j)
        gx_sum += double(dyr[j]) * wp[j] * xr[j];
      const float k = static_cast<float>(gx_sum / double(h)) * rs * rs * rs;
      for (int64_t j = 0; j < h; ++j)
        o[j] = rs * (dyr[j] * wp[j]) - xr[j] * k;
    }
  });
  if (!paramGrads) // frozen weight: dweight is not needed
    return absl::OkStatus();
  // dweight: threads own column ranges and add rows in order (deterministic).
  parallelChunks(h, rows * 2, c.env.threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      gw[j] = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = xp + r * h, *dyr = gy + r * h;
      for (int64_t j = j0; j < j1; ++j)
        gw[j] += dyr[j] * (xr[j] * rstd[r]);
    }
  });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
