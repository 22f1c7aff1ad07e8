// dropout with addressed randomness (docs/kernels.md "Dropout"): an element's
// bit depends on (seed, step, op_id, global index) only, so any shard draws
// what the serial program draws. Also its fused forms (galaxy-fuse):
// dropout_add, dropout_bias_grad, and bias_grad, whose column sums the latter
// shares.
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/philox.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {

absl::Status placeInGlobalBatch(const KernelCall &c,
                                std::vector<int64_t> &global,
                                std::vector<int64_t> &offset) {
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t dim, intAttr(c, "batch_dim"));
  if (dim < 0 || c.ctx.globalBatch <= 0)
    return absl::OkStatus();
  if (dim >= int64_t(global.size()) || dim >= int64_t(offset.size()))
    return kernelError(c, absl::StrFormat("batch_dim %d outside the rank %d",
                                          dim, global.size()));
  offset[dim] += c.ctx.batchOffset;
  global[dim] = c.ctx.globalBatch;
  return absl::OkStatus();
}

// Threads own column ranges and add rows in order: the same result for any
// thread count.
void columnSums(const float *x, int64_t rows, int64_t n, float *out,
                int threads) {
  parallelChunks(n, rows, threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      out[j] = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = x + r * n;
      for (int64_t j = j0; j < j1; ++j)
        out[j] += row[j];
    }
  });
}

namespace {

// y = dropout(x) (x[0] of the call, y out[0]); then rowsDone(r0, r1) on the
// thread that wrote rows [r0, r1) of the last dim, while they are in cache.
template <typename RowsDone>
absl::Status dropoutRows(const KernelCall &c, RowsDone rowsDone) {
  const Tensor &x = c.in[0], &y = c.out[0];
  if (x.shape != y.shape)
    return kernelError(c, "x and y must have one shape");
  GALAXY_CPU_ASSIGN_OR_RETURN(double p, floatAttr(c, "p"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t op_id, intAttr(c, "op_id"));
  GALAXY_CPU_ASSIGN_OR_RETURN(std::vector<int64_t> global,
                              intsAttr(c, "global_shape"));
  GALAXY_CPU_ASSIGN_OR_RETURN(std::vector<int64_t> offset,
                              intsAttr(c, "offset"));
  if (!(p >= 0.0 && p <= 1.0))
    return kernelError(c, absl::StrFormat("attribute p=%g outside [0,1]", p));
  const float *xp = x.f32();
  float *yp = y.f32();
  const int64_t total = x.numel();
  const size_t rank = x.shape.size();
  const int64_t inner = rank ? x.shape[rank - 1] : 1;
  const int64_t rows = total / (inner ? inner : 1);
  if (!c.ctx.training || p == 0.0) {
    if (xp != yp)
      std::memcpy(yp, xp, total * sizeof(float));
    if (total != 0)
      rowsDone(int64_t{0}, rows);
    return absl::OkStatus();
  }
  if (global.empty())
    global = x.shape;
  if (offset.empty())
    offset.assign(rank, 0);
  GALAXY_CPU_RETURN_IF_ERROR(placeInGlobalBatch(c, global, offset));
  if (global.size() != rank || offset.size() != rank)
    return kernelError(
        c, absl::StrFormat("global_shape %s and offset %s need x's rank %d",
                           shapeString(global), shapeString(offset), rank));
  for (size_t d = 0; d < rank; ++d)
    if (offset[d] < 0 || offset[d] + x.shape[d] > global[d])
      return kernelError(
          c, absl::StrFormat("the block at offset %s does not fit in "
                             "global_shape %s",
                             shapeString(offset), shapeString(global)));
  if (total == 0)
    return absl::OkStatus();
  // Row-major strides of the global shape; a local row is contiguous there too.
  std::vector<int64_t> gstride(rank, 1);
  for (size_t d = rank; d-- > 1;)
    gstride[d - 1] = gstride[d] * global[d];
  const float keep =
      static_cast<float>(1.0 - p); // y = x / (1−p), literally as specified
  // u = (word >> 8)·2⁻²⁴ ≥ p  ⇔  (word >> 8) ≥ ⌈p·2²⁴⌉: an exact integer
  // compare.
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(p * 16777216.0));
  const uint64_t seed = c.ctx.seed, step = static_cast<uint64_t>(c.ctx.step);
  const uint32_t op = static_cast<uint32_t>(op_id);
  // Global linear index of local row r's first element.
  auto globalStart = [&](int64_t r) {
    uint64_t g = 0;
    int64_t rem = r;
    for (size_t d = rank; d-- > 0;) {
      const int64_t local = d + 1 == rank ? 0 : rem % x.shape[d];
      if (d + 1 != rank)
        rem /= x.shape[d];
      g += static_cast<uint64_t>(local + offset[d]) * gstride[d];
    }
    return g;
  };
  parallelChunks(rows, inner * 40, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1;) {
      // Rows whose global ranges follow one another are one span: the
      // vector loop takes 64 elements at a time, more than a short row holds
      // (attention probabilities' rows are seq long), and each element's
      // word depends only on its global index, so the bits are the same.
      const uint64_t g = globalStart(r);
      int64_t end = r + 1;
      while (end < r1 &&
             globalStart(end) == g + static_cast<uint64_t>((end - r) * inner))
        ++end;
      const int64_t len = (end - r) * inner;
      const float *xr = xp + r * inner;
      float *yr = yp + r * inner;
      auto one = [&](int64_t j) { // an element outside whole Philox blocks
        const uint64_t gi = g + j;
        const uint32_t word = dropoutBlock(seed, step, op, gi >> 2).w[gi & 3];
        yr[j] = (word >> 8) >= threshold ? xr[j] / keep : 0.f;
      };
      int64_t j = 0;
      for (; j < len && ((g + j) & 3) != 0; ++j)
        one(j);
      // Whole blocks: four elements per Philox call, a loop the compiler can
      // vectorise.
      const int64_t blocks = (len - j) / 4;
      const uint64_t q0 = (g + j) >> 2;
      dropoutBlocks(xr + j, yr + j, blocks, q0, seed, step, op, threshold,
                    keep);
      for (j += 4 * blocks; j < len; ++j)
        one(j);
      r = end;
    }
    rowsDone(r0, r1);
  });
  return absl::OkStatus();
}

} // namespace

absl::Status dropoutKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  return dropoutRows(c, [](int64_t, int64_t) {});
}

// add(dropout(x), r) in one pass: each row gets its residual added right after
// its mask is applied. The same float operations as the pair.
absl::Status dropoutAddKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &res = c.in[1], &y = c.out[0];
  if (res.shape != y.shape)
    return kernelError(c, "the residual must have the output's shape");
  const int64_t inner = y.shape.empty() ? 1 : y.shape.back();
  const float *rp = res.f32();
  float *yp = y.f32();
  std::vector<float> copy; // a plan reusing the residual's buffer in place
  if (rp == yp) {
    copy.assign(rp, rp + res.numel());
    rp = copy.data();
  }
  return dropoutRows(c, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * inner; i < r1 * inner; ++i)
      yp[i] += rp[i];
  });
}

// dy' = dropout(dy) and db = Σ_rows dy', summed as bias_grad sums.
absl::Status dropoutBiasGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 2));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &dy = c.out[0], &db = c.out[1];
  if (dy.shape.empty())
    return kernelError(c, "dy needs rank >= 1");
  const int64_t n = dy.shape.back(), rows = rowCount(dy);
  if (db.numel() != n)
    return kernelError(c, "db must be [N] for dy[...,N]");
  GALAXY_CPU_RETURN_IF_ERROR(dropoutRows(c, [](int64_t, int64_t) {}));
  columnSums(dy.f32(), rows, n, db.f32(), c.env.threads);
  return absl::OkStatus();
}

absl::Status biasGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &dy = c.in[0], &db = c.out[0];
  if (dy.shape.empty())
    return kernelError(c, "dy needs rank >= 1");
  const int64_t n = dy.shape.back(), rows = rowCount(dy);
  if (db.numel() != n)
    return kernelError(c, "db must be [N] for dy[...,N]");
  columnSums(dy.f32(), rows, n, db.f32(), c.env.threads);
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
