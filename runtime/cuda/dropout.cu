// dropout with the CPU's addressed randomness: the same Philox functions
// (runtime/cpu/philox.h, __host__ __device__ under nvcc) on the same global
// index, so a GPU draws the CPU's mask bit for bit.
#include "runtime/cpu/philox.h"
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

__global__ void dropoutK(const float *x, const float *residual, float *y,
                         int64_t n, DropoutAddress a, uint64_t seed,
                         uint64_t step, uint32_t opId, uint32_t threshold,
                         float keep) {
  GALAXY_GRID_STRIDE(i, n) {
    // Local row-major index -> global row-major index g.
    uint64_t g = 0;
    int64_t rem = i;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t local = rem % a.localShape[d];
      rem /= a.localShape[d];
      g += static_cast<uint64_t>(local + a.offset[d]) * a.globalStride[d];
    }
    const uint32_t word = dropoutBlock(seed, step, opId, g >> 2).w[g & 3];
    const float d = (word >> 8) >= threshold ? x[i] / keep : 0.f;
    // dropout_add: the pair's sum, rounded once as the add kernel rounds it.
    y[i] = residual ? d + residual[i] : d;
  }
}

} // namespace

int launchDropout(const float *x, const float *residual, float *y, int64_t n,
                  const DropoutAddress &addr, uint64_t seed, uint64_t step,
                  uint32_t opId, uint32_t threshold, float keep, Stream s) {
  dropoutK<<<gridFor(n), kThreads, 0, asStream(s)>>>(
      x, residual, y, n, addr, seed, step, opId, threshold, keep);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
