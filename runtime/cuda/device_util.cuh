// Launch shapes and warp reductions shared by the backend's .cu files.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace galaxy::rt::cuda {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

// Enough blocks to fill the GPU with grid-stride loops, never more than the
// work needs.
inline unsigned gridFor(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

inline cudaStream_t asStream(void *s) { return static_cast<cudaStream_t>(s); }

// The launch status as the int the launchers return (0 = success).
inline int launchStatus() { return static_cast<int>(cudaGetLastError()); }

#define GALAXY_GRID_STRIDE(i, n)                                               \
  for (int64_t i =                                                             \
           blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;        \
       i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__device__ inline float warpSum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline double warpSumD(double v) {
  for (int o = kWarp / 2; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warpMax(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Blocks of kThreads threads, one warp per row.
constexpr int kRowsPerBlock = kThreads / kWarp;
inline unsigned rowGrid(int64_t rows) { return gridFor(rows, kRowsPerBlock); }
#define GALAXY_WARP_ROWS(r, rows)                                              \
  for (int64_t r =                                                             \
           (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) /     \
           kWarp;                                                              \
       r < (rows); r += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

} // namespace galaxy::rt::cuda
