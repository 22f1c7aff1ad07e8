// fill, iota, add, mul, scale, gelu, relu, silu, tanh (each +grad), bias
// broadcast:
// grid-stride loops over all elements.
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kGeluCubic = 0.044715f;

template <typename T> __global__ void fillK(T *y, int64_t n, T v) {
  GALAXY_GRID_STRIDE(i, n) y[i] = v;
}

__global__ void iotaK(int32_t *y, int64_t n, int64_t stride, int64_t size,
                      int64_t offset) {
  GALAXY_GRID_STRIDE(i, n)
  y[i] = static_cast<int32_t>((i / stride) % size + offset);
}

// One kernel for every binary map: op 0 add, 1 mul.
__global__ void binaryK(const float *a, const float *b, float *y, int64_t n,
                        int op) {
  GALAXY_GRID_STRIDE(i, n) y[i] = op == 0 ? a[i] + b[i] : a[i] * b[i];
}

__global__ void scaleK(const float *x, float *y, int64_t n, float alpha) {
  GALAXY_GRID_STRIDE(i, n) y[i] = alpha * x[i];
}

__device__ inline float geluTanhInner(float v) {
  return kSqrt2OverPi * (v + kGeluCubic * v * v * v);
}

__global__ void geluK(const float *x, float *y, int64_t n, bool tanhApprox) {
  GALAXY_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = tanhApprox ? 0.5f * v * (1.f + tanhf(geluTanhInner(v)))
                      : 0.5f * v * (1.f + erff(v * kInvSqrt2));
  }
}

__global__ void geluGradK(const float *x, const float *dy, float *dx, int64_t n,
                          bool tanhApprox) {
  GALAXY_GRID_STRIDE(i, n) {
    const float v = x[i];
    float d;
    if (tanhApprox) {
      const float t = tanhf(geluTanhInner(v));
      const float dinner = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * v * v);
      d = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * dinner;
    } else {
      const float cdf = 0.5f * (1.f + erff(v * kInvSqrt2));
      d = cdf + v * kInvSqrt2Pi * expf(-0.5f * v * v);
    }
    dx[i] = dy[i] * d;
  }
}

__global__ void tanhK(const float *x, float *y, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) y[i] = tanhf(x[i]);
}

__global__ void tanhGradK(const float *y, const float *dy, float *dx,
                          int64_t n) {
  GALAXY_GRID_STRIDE(i, n) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}

__global__ void reluK(const float *x, float *y, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void reluGradK(const float *x, const float *dy, float *dx,
                          int64_t n) {
  GALAXY_GRID_STRIDE(i, n) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

// swish / SiLU: x·σ(x), as the CPU kernel computes it.
__global__ void siluK(const float *x, float *y, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) y[i] = x[i] / (1.f + expf(-x[i]));
}

// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
__global__ void siluGradK(const float *x, const float *dy, float *dx,
                          int64_t n) {
  GALAXY_GRID_STRIDE(i, n) {
    const float s = 1.f / (1.f + expf(-x[i]));
    dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
  }
}

__global__ void broadcastRowsK(const float *bias, float *y, int64_t total,
                               int64_t n) {
  GALAXY_GRID_STRIDE(i, total) y[i] = bias[i % n];
}

} // namespace

int launchFillF32(float *y, int64_t n, float value, Stream s) {
  fillK<<<gridFor(n), kThreads, 0, asStream(s)>>>(y, n, value);
  return launchStatus();
}
int launchFillI32(int32_t *y, int64_t n, int32_t value, Stream s) {
  fillK<<<gridFor(n), kThreads, 0, asStream(s)>>>(y, n, value);
  return launchStatus();
}
int launchIota(int32_t *y, int64_t n, int64_t stride, int64_t size,
               int64_t offset, Stream s) {
  iotaK<<<gridFor(n), kThreads, 0, asStream(s)>>>(y, n, stride, size, offset);
  return launchStatus();
}
int launchAdd(const float *a, const float *b, float *y, int64_t n, Stream s) {
  binaryK<<<gridFor(n), kThreads, 0, asStream(s)>>>(a, b, y, n, 0);
  return launchStatus();
}
int launchMul(const float *a, const float *b, float *y, int64_t n, Stream s) {
  binaryK<<<gridFor(n), kThreads, 0, asStream(s)>>>(a, b, y, n, 1);
  return launchStatus();
}
int launchScale(const float *x, float *y, int64_t n, float alpha, Stream s) {
  scaleK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n, alpha);
  return launchStatus();
}
int launchGelu(const float *x, float *y, int64_t n, bool tanhApprox, Stream s) {
  geluK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n, tanhApprox);
  return launchStatus();
}
int launchGeluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   bool tanhApprox, Stream s) {
  geluGradK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, dy, dx, n, tanhApprox);
  return launchStatus();
}
int launchTanh(const float *x, float *y, int64_t n, Stream s) {
  tanhK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n);
  return launchStatus();
}
int launchTanhGrad(const float *y, const float *dy, float *dx, int64_t n,
                   Stream s) {
  tanhGradK<<<gridFor(n), kThreads, 0, asStream(s)>>>(y, dy, dx, n);
  return launchStatus();
}
int launchRelu(const float *x, float *y, int64_t n, Stream s) {
  reluK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n);
  return launchStatus();
}
int launchReluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   Stream s) {
  reluGradK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, dy, dx, n);
  return launchStatus();
}
int launchSilu(const float *x, float *y, int64_t n, Stream s) {
  siluK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n);
  return launchStatus();
}
int launchSiluGrad(const float *x, const float *dy, float *dx, int64_t n,
                   Stream s) {
  siluGradK<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, dy, dx, n);
  return launchStatus();
}
int launchBroadcastRows(const float *bias, float *y, int64_t rows, int64_t n,
                        Stream s) {
  broadcastRowsK<<<gridFor(rows * n), kThreads, 0, asStream(s)>>>(bias, y,
                                                                  rows * n, n);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
