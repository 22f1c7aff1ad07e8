// Row kernels, one warp per row: layer_norm and rms_norm (+ the dx part of
// their grads),
// masked_softmax, softmax_grad, cross_entropy (+grad). Same formulas and
// two-pass statistics as the CPU backend (runtime/cpu/vector_loops.cc).
#include <math_constants.h>

#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

__device__ inline int lane() { return threadIdx.x % kWarp; }

// Mean and 1/sqrt(var + eps) of one row (biased variance, two passes).
__device__ inline void rowStats(const float *x, int64_t h, float eps,
                                float *mean, float *rstd) {
  float s = 0.f;
  for (int64_t j = lane(); j < h; j += kWarp)
    s += x[j];
  const float mu = warpSum(s) / static_cast<float>(h);
  float q = 0.f;
  for (int64_t j = lane(); j < h; j += kWarp) {
    const float d = x[j] - mu;
    q += d * d;
  }
  *mean = mu;
  *rstd = 1.f / sqrtf(warpSum(q) / static_cast<float>(h) + eps);
}

__global__ void layerNormK(const float *x, const float *gamma,
                           const float *beta, float *y, int64_t rows, int64_t h,
                           float eps, float *mean, float *rstd) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *xr = x + r * h;
    float *yr = y + r * h;
    float mu, rs;
    rowStats(xr, h, eps, &mu, &rs);
    for (int64_t j = lane(); j < h; j += kWarp)
      yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    if (lane() == 0 && mean) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

// dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), dxhat = dy·gamma.
__global__ void layerNormGradInputK(const float *x, const float *gamma,
                                    const float *dy, float *dx, int64_t rows,
                                    int64_t h, float eps, float *mean,
                                    float *rstd) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *xr = x + r * h, *gr = dy + r * h;
    float *o = dx + r * h;
    float mu, rs;
    rowStats(xr, h, eps, &mu, &rs);
    float a1 = 0.f, a2 = 0.f;
    for (int64_t j = lane(); j < h; j += kWarp) {
      const float dxhat = gr[j] * gamma[j];
      a1 += dxhat;
      a2 += dxhat * (xr[j] - mu) * rs;
    }
    const float s1 = warpSum(a1) / static_cast<float>(h);
    const float s2 = warpSum(a2) / static_cast<float>(h);
    for (int64_t j = lane(); j < h; j += kWarp)
      o[j] = rs * (gr[j] * gamma[j] - s1 - (xr[j] - mu) * rs * s2);
    if (lane() == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

// 1/sqrt(mean(x²) + eps) of one row, summed in double as the CPU does.
__device__ inline float rmsRstd(const float *x, int64_t h, float eps) {
  double ss = 0;
  for (int64_t j = lane(); j < h; j += kWarp)
    ss += double(x[j]) * x[j];
  return 1.f / sqrtf(static_cast<float>(warpSumD(ss) / double(h)) + eps);
}

__global__ void rmsNormK(const float *x, const float *w, float *y, int64_t rows,
                         int64_t h, float eps) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *xr = x + r * h;
    float *yr = y + r * h;
    const float rs = rmsRstd(xr, h, eps);
    for (int64_t j = lane(); j < h; j += kWarp)
      yr[j] = w[j] * (xr[j] * rs);
  }
}

// dx = r·g − x·r³·mean(g·x), g = dy·w; writes r per row (rstd) for dweight.
__global__ void rmsNormGradInputK(const float *x, const float *w,
                                  const float *dy, float *dx, int64_t rows,
                                  int64_t h, float eps, float *rstd) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *xr = x + r * h, *gr = dy + r * h;
    float *o = dx + r * h;
    const float rs = rmsRstd(xr, h, eps);
    double a = 0;
    for (int64_t j = lane(); j < h; j += kWarp)
      a += double(gr[j]) * w[j] * xr[j];
    const float k = static_cast<float>(warpSumD(a) / double(h)) * rs * rs * rs;
    for (int64_t j = lane(); j < h; j += kWarp)
      o[j] = rs * (gr[j] * w[j]) - xr[j] * k;
    if (lane() == 0)
      rstd[r] = rs;
  }
}

__global__ void maskedSoftmaxK(const float *x, const float *maskF32,
                               const int32_t *maskI32, float *y, int64_t rows,
                               int64_t sk, int64_t sq, int64_t rowsPerBatch,
                               bool causal, int64_t qOffset) {
  GALAXY_WARP_ROWS(r, rows) {
    int64_t limit = sk; // keys [0, limit) take part
    if (causal) {
      limit = r % sq + qOffset + 1;
      limit = limit < 0 ? 0 : (limit > sk ? sk : limit);
    }
    const int64_t b = r / rowsPerBatch;
    const float *in = x + r * sk;
    float *out = y + r * sk;
    auto value = [&](int64_t k) {
      float v = in[k];
      if (maskF32)
        v += (1.f - maskF32[b * sk + k]) * -10000.f;
      else if (maskI32)
        v += (1.f - static_cast<float>(maskI32[b * sk + k])) * -10000.f;
      return v;
    };
    float mx = -CUDART_INF_F;
    for (int64_t k = lane(); k < limit; k += kWarp)
      mx = fmaxf(mx, value(k));
    mx = warpMax(mx);
    float s = 0.f;
    for (int64_t k = lane(); k < limit; k += kWarp)
      s += expf(value(k) - mx);
    s = warpSum(s);
    const float inv = limit > 0 ? 1.f / s : 0.f;
    for (int64_t k = lane(); k < sk; k += kWarp)
      out[k] = k < limit ? expf(value(k) - mx) * inv : 0.f;
  }
}

__global__ void softmaxGradK(const float *y, const float *dy, float *dx,
                             int64_t rows, int64_t n) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *yr = y + r * n, *gr = dy + r * n;
    float *o = dx + r * n;
    float dot = 0.f;
    for (int64_t k = lane(); k < n; k += kWarp)
      dot += yr[k] * gr[k];
    dot = warpSum(dot);
    for (int64_t k = lane(); k < n; k += kWarp)
      o[k] = yr[k] * (gr[k] - dot);
  }
}

// log Σ exp(row) in double, as the CPU computes it.
__device__ inline double logSumExp(const float *row, int64_t n) {
  float mx = -CUDART_INF_F;
  for (int64_t j = lane(); j < n; j += kWarp)
    mx = fmaxf(mx, row[j]);
  mx = warpMax(mx);
  double s = 0.0;
  for (int64_t j = lane(); j < n; j += kWarp)
    s += exp(static_cast<double>(row[j] - mx));
  return static_cast<double>(mx) + log(warpSumD(s));
}

// Whether row r counts: false for an ignored row (label == ignore) and for
// a label outside [0, n), which also records the row in badRow.
__device__ inline bool labelOk(const int32_t *labels, int64_t r, int64_t n,
                               int64_t ignore, int32_t *badRow) {
  const int32_t l = labels[r];
  if (l == ignore)
    return false;
  if (l >= 0 && l < n)
    return true;
  if (lane() == 0)
    atomicMin(badRow, static_cast<int32_t>(r));
  return false;
}

__global__ void crossEntropyTermsK(const float *logits, const int32_t *labels,
                                   int64_t rows, int64_t n, int64_t ignore,
                                   double *terms, int32_t *badRow) {
  GALAXY_WARP_ROWS(r, rows) {
    const float *row = logits + r * n;
    const bool ok = labelOk(labels, r, n, ignore, badRow);
    const double lse = logSumExp(row, n);
    if (lane() == 0)
      terms[r] = ok ? lse - row[labels[r]] : 0.0;
  }
}

// The divisor of the summed loss: denom·count (count null: 1); <= 0 when
// no target is counted (the loss and its gradient are then 0).
__device__ inline double ceDivisor(double denom, const float *count) {
  return count ? denom * static_cast<double>(count[0]) : denom;
}

// One thread adds the row terms in order: the same sum on every run.
__global__ void crossEntropySumK(const double *terms, int64_t rows,
                                 double denom, const float *count,
                                 float *loss) {
  const double d = ceDivisor(denom, count);
  if (d <= 0.0) {
    loss[0] = 0.f;
    return;
  }
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r)
    total += terms[r];
  loss[0] = static_cast<float>(total / d);
}

__global__ void crossEntropyGradK(const float *logits, const int32_t *labels,
                                  const float *dloss, int64_t rows, int64_t n,
                                  double denom, const float *count,
                                  int64_t ignore, float *dlogits,
                                  int32_t *badRow) {
  const bool none = ceDivisor(denom, count) <= 0.0; // no counted target
  GALAXY_WARP_ROWS(r, rows) {
    const float *row = logits + r * n;
    float *o = dlogits + r * n;
    if (labels[r] == ignore) { // not counted: no gradient
      for (int64_t j = lane(); j < n; j += kWarp)
        o[j] = 0.f;
      continue;
    }
    const bool ok = labelOk(labels, r, n, ignore, badRow);
    if (none) {
      for (int64_t j = lane(); j < n; j += kWarp)
        o[j] = 0.f;
      continue;
    }
    const double lse = logSumExp(row, n);
    const double scale =
        static_cast<double>(dloss[0]) / ceDivisor(denom, count);
    const int32_t l = ok ? labels[r] : -1;
    for (int64_t j = lane(); j < n; j += kWarp) {
      const double p = exp(static_cast<double>(row[j]) - lse);
      o[j] = static_cast<float>((j == l ? p - 1.0 : p) * scale);
    }
  }
}

} // namespace

int launchLayerNorm(const float *x, const float *gamma, const float *beta,
                    float *y, int64_t rows, int64_t h, float eps, float *mean,
                    float *rstd, Stream s) {
  layerNormK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      x, gamma, beta, y, rows, h, eps, mean, rstd);
  return launchStatus();
}

int launchLayerNormGradInput(const float *x, const float *gamma,
                             const float *dy, float *dx, int64_t rows,
                             int64_t h, float eps, float *mean, float *rstd,
                             Stream s) {
  layerNormGradInputK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      x, gamma, dy, dx, rows, h, eps, mean, rstd);
  return launchStatus();
}

int launchRmsNorm(const float *x, const float *w, float *y, int64_t rows,
                  int64_t h, float eps, Stream s) {
  rmsNormK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(x, w, y, rows, h, eps);
  return launchStatus();
}

int launchRmsNormGradInput(const float *x, const float *w, const float *dy,
                           float *dx, int64_t rows, int64_t h, float eps,
                           float *rstd, Stream s) {
  rmsNormGradInputK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      x, w, dy, dx, rows, h, eps, rstd);
  return launchStatus();
}

int launchMaskedSoftmax(const float *x, const float *maskF32,
                        const int32_t *maskI32, float *y, int64_t rows,
                        int64_t sk, int64_t sq, int64_t rowsPerBatch,
                        bool causal, int64_t qOffset, Stream s) {
  maskedSoftmaxK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      x, maskF32, maskI32, y, rows, sk, sq, rowsPerBatch, causal, qOffset);
  return launchStatus();
}

int launchSoftmaxGrad(const float *y, const float *dy, float *dx, int64_t rows,
                      int64_t n, Stream s) {
  softmaxGradK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(y, dy, dx, rows, n);
  return launchStatus();
}

int launchCrossEntropy(const float *logits, const int32_t *labels, int64_t rows,
                       int64_t n, double denom, const float *count,
                       int64_t ignore, float *loss, double *scratch,
                       int32_t *badRow, Stream s) {
  crossEntropyTermsK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      logits, labels, rows, n, ignore, scratch, badRow);
  crossEntropySumK<<<1, 1, 0, asStream(s)>>>(scratch, rows, denom, count, loss);
  return launchStatus();
}

int launchCrossEntropyGrad(const float *logits, const int32_t *labels,
                           const float *dloss, int64_t rows, int64_t n,
                           double denom, const float *count, int64_t ignore,
                           float *dlogits, int32_t *badRow, Stream s) {
  crossEntropyGradK<<<rowGrid(rows), kThreads, 0, asStream(s)>>>(
      logits, labels, dloss, rows, n, denom, count, ignore, dlogits, badRow);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
