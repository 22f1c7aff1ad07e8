// sgd_update and adamw_update, in place (torch.optim's element updates; the
// step scalars come precomputed in double from the host, as on the CPU).
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

__global__ void sgdK(float *p, const float *g, int64_t n, float lr, float wd) {
  GALAXY_GRID_STRIDE(i, n) p[i] -= lr * (g[i] + wd * p[i]);
}

__global__ void adamwK(float *p, const float *g, float *m, float *v, int64_t n,
                       AdamScalars k) {
  GALAXY_GRID_STRIDE(i, n) {
    const float gi = g[i];
    const float mi = k.b1 * m[i] + k.oneB1 * gi;
    const float vi = k.b2 * v[i] + k.oneB2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * k.decay - k.stepSize * (mi / (sqrtf(vi) / k.bc2Sqrt + k.eps));
  }
}

} // namespace

int launchSgd(float *p, const float *g, int64_t n, float lr, float wd,
              Stream s) {
  sgdK<<<gridFor(n), kThreads, 0, asStream(s)>>>(p, g, n, lr, wd);
  return launchStatus();
}

int launchAdamw(float *p, const float *g, float *m, float *v, int64_t n,
                AdamScalars k, Stream s) {
  adamwK<<<gridFor(n), kThreads, 0, asStream(s)>>>(p, g, m, v, n, k);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
