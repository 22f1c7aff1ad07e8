// Deterministic sums over rows (bias_grad, layer_norm's dgamma/dbeta): rows are
// cut into fixed chunks (of kChunk rows), each chunk's column sums go to
// scratch, and a second pass adds the chunks in order. No atomics, so every run
// and every GPU gives the same bits.
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

constexpr int64_t kChunk = 64;
constexpr int64_t kMaxChunks = 65535; // gridDim.y limit

// Rows per chunk: kChunk unless that would need more than kMaxChunks chunks.
int64_t chunkRows(int64_t rows) {
  const int64_t need = (rows + kMaxChunks - 1) / kMaxChunks;
  return need > kChunk ? need : kChunk;
}
int64_t chunksFor(int64_t rows) {
  return (rows + chunkRows(rows) - 1) / chunkRows(rows);
}

// value(r, j) is summed over the chunk's rows into part[chunk * cols + j].
template <typename Value>
__global__ void chunkSumsK(int64_t rows, int64_t chunk, int64_t cols,
                           float *part, Value value) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols)
    return;
  const int64_t r0 = blockIdx.y * chunk;
  const int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
  float acc = 0.f;
  for (int64_t r = r0; r < r1; ++r)
    acc += value(r, j);
  part[blockIdx.y * cols + j] = acc;
}

__global__ void addChunksK(const float *part, int64_t chunks, int64_t cols,
                           float *out) {
  GALAXY_GRID_STRIDE(j, cols) {
    float acc = 0.f;
    for (int64_t c = 0; c < chunks; ++c)
      acc += part[c * cols + j];
    out[j] = acc;
  }
}

struct Plain {
  const float *x;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t j) const {
    return x[r * cols + j];
  }
};

struct NormalizedTimesDy {
  const float *x, *dy, *mean, *rstd;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t j) const {
    const int64_t i = r * cols + j;
    return dy[i] * (x[i] - mean[r]) * rstd[r];
  }
};

template <typename Value>
int columnSums(int64_t rows, int64_t cols, Value value, float *out,
               float *scratch, Stream s) {
  if (cols == 0)
    return 0;
  const int64_t chunks = chunksFor(rows);
  if (chunks > 0) {
    const dim3 grid(static_cast<unsigned>((cols + kThreads - 1) / kThreads),
                    static_cast<unsigned>(chunks));
    chunkSumsK<<<grid, kThreads, 0, asStream(s)>>>(rows, chunkRows(rows), cols,
                                                   scratch, value);
  }
  addChunksK<<<gridFor(cols), kThreads, 0, asStream(s)>>>(scratch, chunks, cols,
                                                          out);
  return launchStatus();
}

} // namespace

int64_t columnSumsScratch(int64_t rows, int64_t cols) {
  return chunksFor(rows) * cols;
}

int launchColumnSums(const float *x, int64_t rows, int64_t cols, float *out,
                     float *scratch, Stream s) {
  return columnSums(rows, cols, Plain{x, cols}, out, scratch, s);
}

int launchLayerNormParamGrad(const float *x, const float *dy, const float *mean,
                             const float *rstd, int64_t rows, int64_t h,
                             float *dgamma, float *dbeta, float *scratch,
                             Stream s) {
  if (int e = columnSums(rows, h, NormalizedTimesDy{x, dy, mean, rstd, h},
                         dgamma, scratch, s))
    return e;
  return columnSums(rows, h, Plain{dy, h}, dbeta,
                    scratch + columnSumsScratch(rows, h), s);
}

} // namespace galaxy::rt::cuda
