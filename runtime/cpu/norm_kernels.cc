// layer_norm and its exact gradient.
#include <cmath>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"

namespace galaxy::rt::cpu {
namespace {

// Mean and 1/sqrt(biased var + eps) of one row (two passes: stable for large
// means).
inline void rowStats(const float *x, int64_t h, float eps, float *mean,
                     float *rstd) {
  float s = 0.f;
  for (int64_t j = 0; j < h; ++j)
    s += x[j];
  const float mu = s / static_cast<float>(h);
  float v = 0.f;
  for (int64_t j = 0; j < h; ++j)
    v += (x[j] - mu) * (x[j] - mu);
  *mean = mu;
  *rstd = 1.f / std::sqrt(v / static_cast<float>(h) + eps);
}

} // namespace

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
      const float *xr = xp + r * h;
      float *yr = yp + r * h;
      float mu, rstd;
      rowStats(xr, h, eps, &mu, &rstd);
      for (int64_t j = 0; j < h; ++j)
        yr[j] = (xr[j] - mu) * rstd * g[j] + b[j];
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
      const float *xr = xp + r * h, *gr = gy + r * h;
      float *o = gx + r * h;
      float mu, rs;
      rowStats(xr, h, eps, &mu, &rs);
      mean[r] = mu;
      rstd[r] = rs;
      float s1 = 0.f, s2 = 0.f;
      for (int64_t j = 0; j < h; ++j) {
        const float dxhat = gr[j] * g[j];
        s1 += dxhat;
        s2 += dxhat * (xr[j] - mu) * rs;
      }
      s1 /= static_cast<float>(h);
      s2 /= static_cast<float>(h);
      for (int64_t j = 0; j < h; ++j)
        o[j] = rs * (gr[j] * g[j] - s1 - (xr[j] - mu) * rs * s2);
    }
  });
  // dgamma, dbeta: threads own column ranges and add rows in order
  // (deterministic).
  parallelChunks(h, rows * 4, c.env.threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      gg[j] = gb[j] = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = xp + r * h, *gr = gy + r * h;
      const float mu = mean[r], rs = rstd[r];
      for (int64_t j = j0; j < j1; ++j) {
        gg[j] += gr[j] * (xr[j] - mu) * rs;
        gb[j] += gr[j];
      }
    }
  });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
