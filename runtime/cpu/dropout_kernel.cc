// dropout with addressed randomness (docs/kernels.md "Dropout"): an element's
// bit depends on (seed, step, op_id, global index) only, so any shard draws
// what the serial program draws.
#include <cmath>
#include <cstring>

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

absl::Status dropoutKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
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
  if (!c.ctx.training || p == 0.0) {
    if (xp != yp)
      std::memcpy(yp, xp, total * sizeof(float));
    return absl::OkStatus();
  }
  const size_t rank = x.shape.size();
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
  const int64_t inner = rank ? x.shape[rank - 1] : 1;
  const int64_t rows = total / (inner ? inner : 1);
  const float keep =
      static_cast<float>(1.0 - p); // y = x / (1−p), literally as specified
  // u = (word >> 8)·2⁻²⁴ ≥ p  ⇔  (word >> 8) ≥ ⌈p·2²⁴⌉: an exact integer
  // compare.
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(p * 16777216.0));
  const uint64_t seed = c.ctx.seed, step = static_cast<uint64_t>(c.ctx.step);
  const uint32_t op = static_cast<uint32_t>(op_id);
  parallelChunks(rows, inner * 40, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      // Global linear index of this row's first element.
      uint64_t g = 0;
      int64_t rem = r;
      for (size_t d = rank; d-- > 0;) {
        const int64_t local = d + 1 == rank ? 0 : rem % x.shape[d];
        if (d + 1 != rank)
          rem /= x.shape[d];
        g += static_cast<uint64_t>(local + offset[d]) * gstride[d];
      }
      const float *xr = xp + r * inner;
      float *yr = yp + r * inner;
      auto one = [&](int64_t j) { // an element outside whole Philox blocks
        const uint64_t gi = g + j;
        const uint32_t word = dropoutBlock(seed, step, op, gi >> 2).w[gi & 3];
        yr[j] = (word >> 8) >= threshold ? xr[j] / keep : 0.f;
      };
      int64_t j = 0;
      for (; j < inner && ((g + j) & 3) != 0; ++j)
        one(j);
      // Whole blocks: four elements per Philox call, a loop the compiler can
      // vectorise.
      const int64_t blocks = (inner - j) / 4;
      const uint64_t q0 = (g + j) >> 2;
      const float *xb = xr + j;
      float *yb = yr + j;
      dropoutBlocks(xb, yb, blocks, q0, seed, step, op, threshold, keep);
      for (j += 4 * blocks; j < inner; ++j)
        one(j);
    }
  });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
