// Kernels indexed by token ids, positions or heads: embedding(+grad),
// take_token(+grad), split_heads / merge_heads, repeat_kv(+grad), rope.
#include <cub/device/device_radix_sort.cuh>

#include "runtime/cpu/rope_angles.h"
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

constexpr int64_t kAlign = 256;
int64_t alignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

__global__ void embeddingK(const float *table, int64_t v, int64_t h,
                           const int32_t *ids, int64_t rows,
                           int64_t vocabOffset, float *y) {
  GALAXY_GRID_STRIDE(i, rows * h) {
    const int64_t r = i / h, j = i % h;
    const int64_t row = static_cast<int64_t>(ids[r]) - vocabOffset;
    y[i] = row >= 0 && row < v ? table[row * h + j] : 0.f;
  }
}

__global__ void iotaRowsK(int32_t *out, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) out[i] = static_cast<int32_t>(i);
}

// Block p owns sorted position p when it starts a run of equal ids; it adds
// that id's dy rows (in row order: the sort is stable) into its table row.
__global__ void embeddingGradK(const int32_t *sortedIds,
                               const int32_t *sortedRows, const float *dy,
                               int64_t rows, int64_t v, int64_t h,
                               int64_t vocabOffset, int64_t paddingIdx,
                               float alpha, bool keep, float *dtable) {
  for (int64_t p = blockIdx.x; p < rows; p += gridDim.x) {
    const int32_t id = sortedIds[p];
    if (p > 0 && sortedIds[p - 1] == id)
      continue;
    const int64_t row = static_cast<int64_t>(id) - vocabOffset;
    if (row < 0 || row >= v || id == paddingIdx)
      continue;
    for (int64_t j = threadIdx.x; j < h; j += blockDim.x) {
      float acc = 0.f;
      for (int64_t q = p; q < rows && sortedIds[q] == id; ++q)
        acc += dy[static_cast<int64_t>(sortedRows[q]) * h + j];
      // Each row is written by one block: deterministic without atomics.
      float *out = dtable + row * h + j;
      *out = (keep ? *out : 0.f) + alpha * acc;
    }
  }
}

__global__ void scaleTableK(float *t, int64_t n, float beta) {
  GALAXY_GRID_STRIDE(i, n) { t[i] *= beta; }
}

// Row bi's position: indices[bi], or `index` for every row; -1 (recorded in
// badRow) when it lies outside [0, s).
__device__ inline int64_t tokenPosition(int64_t bi, int64_t s, int64_t index,
                                        const int32_t *indices,
                                        int32_t *badRow) {
  const int64_t p = indices ? static_cast<int64_t>(indices[bi]) : index;
  if (p >= 0 && p < s)
    return p;
  atomicMin(badRow, static_cast<int32_t>(bi));
  return -1;
}

__global__ void takeTokenK(const float *x, float *y, int64_t b, int64_t s,
                           int64_t h, int64_t index, const int32_t *indices,
                           int32_t *badRow) {
  GALAXY_GRID_STRIDE(i, b * h) {
    const int64_t bi = i / h, j = i % h;
    const int64_t p = tokenPosition(bi, s, index, indices, badRow);
    y[i] = p >= 0 ? x[(bi * s + p) * h + j] : 0.f;
  }
}

__global__ void takeTokenGradK(const float *dy, float *dx, int64_t b, int64_t s,
                               int64_t h, int64_t index, const int32_t *indices,
                               int32_t *badRow) {
  GALAXY_GRID_STRIDE(i, b * s * h) {
    const int64_t j = i % h, t = (i / h) % s, bi = i / (h * s);
    const int64_t p = tokenPosition(bi, s, index, indices, badRow);
    dx[i] = t == p ? dy[bi * h + j] : 0.f;
  }
}

// Element i of the [B,n,S,d] tensor and its place in [B,S,n,d].
__global__ void headsCopyK(const uint32_t *x, uint32_t *y, int64_t b,
                           int64_t nh, int64_t s, int64_t d, bool toHeads) {
  GALAXY_GRID_STRIDE(i, b * nh * s * d) {
    const int64_t e = i % d, t = (i / d) % s, hh = (i / (d * s)) % nh,
                  bi = i / (d * s * nh);
    const int64_t flat = ((bi * s + t) * nh + hh) * d + e;
    if (toHeads)
      y[i] = x[flat];
    else
      y[flat] = x[i];
  }
}

// One element per thread; `block` = S·d, one head's data.
__global__ void repeatKvK(const float *x, float *y, int64_t b, int64_t nkv,
                          int64_t n, int64_t block, int64_t groups,
                          int64_t headOffset) {
  GALAXY_GRID_STRIDE(i, b * n * block) {
    const int64_t j = i % block, r = i / block, h = r % n, bi = r / n;
    y[i] = x[(bi * nkv + (h + headOffset) / groups) * block + j];
  }
}

// KV head o sums its group's heads this rank holds, in head order (as the
// CPU); none: 0.
__global__ void repeatKvGradK(const float *dy, float *dx, int64_t b,
                              int64_t nkv, int64_t n, int64_t block,
                              int64_t groups, int64_t headOffset) {
  GALAXY_GRID_STRIDE(i, b * nkv * block) {
    const int64_t j = i % block, r = i / block, o = r % nkv, bi = r / nkv;
    const int64_t lo = o * groups - headOffset, hi = lo + groups;
    float acc = 0.f;
    for (int64_t h = lo < 0 ? 0 : lo; h < (hi < n ? hi : n); ++h)
      acc += dy[(bi * n + h) * block + j];
    dx[i] = acc;
  }
}

// One (x[i], x[i + d/2]) pair per thread; row r of [B·n·S, d] is position
// r % s + offset.
__global__ void ropeK(const float *x, float *y, int64_t rows, int64_t s,
                      int64_t half, double theta, bool inverse,
                      int64_t offset) {
  GALAXY_GRID_STRIDE(k, rows * half) {
    const int64_t i = k % half, r = k / half;
    const rope::CosSin cs = rope::cosSin(
        r % s + offset, rope::invFreq(theta, i, 2 * half), inverse);
    const float *xr = x + r * 2 * half;
    float *yr = y + r * 2 * half;
    rope::rotate(xr[i], xr[i + half], cs, yr[i], yr[i + half]);
  }
}

size_t sortTempBytes(int64_t rows) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const int32_t *>(nullptr),
      static_cast<int32_t *>(nullptr), static_cast<const int32_t *>(nullptr),
      static_cast<int32_t *>(nullptr), static_cast<int>(rows));
  return bytes;
}

} // namespace

int launchEmbedding(const float *table, int64_t v, int64_t h,
                    const int32_t *ids, int64_t rows, int64_t vocabOffset,
                    float *y, Stream s) {
  embeddingK<<<gridFor(rows * h), kThreads, 0, asStream(s)>>>(
      table, v, h, ids, rows, vocabOffset, y);
  return launchStatus();
}

int64_t embeddingGradScratch(int64_t rows) {
  return 3 * alignUp(rows * 4) +
         alignUp(static_cast<int64_t>(sortTempBytes(rows)));
}

int launchEmbeddingGrad(const int32_t *ids, const float *dy, int64_t rows,
                        int64_t v, int64_t h, int64_t vocabOffset,
                        int64_t paddingIdx, float alpha, float beta,
                        float *dtable, void *scratch, int64_t scratchBytes,
                        Stream s) {
  cudaStream_t st = asStream(s);
  if (beta == 0.f) {
    if (cudaError_t e = cudaMemsetAsync(dtable, 0, v * h * sizeof(float), st))
      return static_cast<int>(e);
  } else if (beta != 1.f) {
    scaleTableK<<<gridFor(v * h), kThreads, 0, st>>>(dtable, v * h, beta);
  }
  if (rows == 0)
    return 0;
  char *base = static_cast<char *>(scratch);
  const int64_t idBytes = alignUp(rows * 4);
  auto *sortedIds = reinterpret_cast<int32_t *>(base);
  auto *rowsIn = reinterpret_cast<int32_t *>(base + idBytes);
  auto *sortedRows = reinterpret_cast<int32_t *>(base + 2 * idBytes);
  void *temp = base + 3 * idBytes;
  size_t tempBytes = static_cast<size_t>(scratchBytes - 3 * idBytes);
  iotaRowsK<<<gridFor(rows), kThreads, 0, st>>>(rowsIn, rows);
  if (cudaError_t e = cub::DeviceRadixSort::SortPairs(
          temp, tempBytes, ids, sortedIds, rowsIn, sortedRows,
          static_cast<int>(rows), 0, 32, st))
    return static_cast<int>(e);
  const unsigned blocks =
      static_cast<unsigned>(rows < 65535 * 4 ? rows : 65535 * 4);
  embeddingGradK<<<blocks, 128, 0, st>>>(sortedIds, sortedRows, dy, rows, v, h,
                                         vocabOffset, paddingIdx, alpha,
                                         beta != 0.f, dtable);
  return launchStatus();
}

int launchTakeToken(const float *x, float *y, int64_t b, int64_t s_, int64_t h,
                    int64_t index, const int32_t *indices, int32_t *badRow,
                    Stream s) {
  takeTokenK<<<gridFor(b * h), kThreads, 0, asStream(s)>>>(
      x, y, b, s_, h, index, indices, badRow);
  return launchStatus();
}

int launchTakeTokenGrad(const float *dy, float *dx, int64_t b, int64_t s_,
                        int64_t h, int64_t index, const int32_t *indices,
                        int32_t *badRow, Stream s) {
  takeTokenGradK<<<gridFor(b * s_ * h), kThreads, 0, asStream(s)>>>(
      dy, dx, b, s_, h, index, indices, badRow);
  return launchStatus();
}

int launchHeadsCopy(const void *x, void *y, int64_t b, int64_t nh, int64_t s_,
                    int64_t d, bool toHeads, Stream s) {
  headsCopyK<<<gridFor(b * nh * s_ * d), kThreads, 0, asStream(s)>>>(
      static_cast<const uint32_t *>(x), static_cast<uint32_t *>(y), b, nh, s_,
      d, toHeads);
  return launchStatus();
}

int launchRepeatKv(const float *x, float *y, int64_t b, int64_t nkv, int64_t n,
                   int64_t block, int64_t groups, int64_t headOffset,
                   Stream s) {
  repeatKvK<<<gridFor(b * n * block), kThreads, 0, asStream(s)>>>(
      x, y, b, nkv, n, block, groups, headOffset);
  return launchStatus();
}

int launchRepeatKvGrad(const float *dy, float *dx, int64_t b, int64_t nkv,
                       int64_t n, int64_t block, int64_t groups,
                       int64_t headOffset, Stream s) {
  repeatKvGradK<<<gridFor(b * nkv * block), kThreads, 0, asStream(s)>>>(
      dy, dx, b, nkv, n, block, groups, headOffset);
  return launchStatus();
}

int launchRope(const float *x, float *y, int64_t rows, int64_t s_, int64_t d,
               double theta, bool inverse, int64_t offset, Stream s) {
  ropeK<<<gridFor(rows * (d / 2)), kThreads, 0, asStream(s)>>>(
      x, y, rows, s_, d / 2, theta, inverse, offset);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
