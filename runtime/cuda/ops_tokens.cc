// embedding(+grad), take_token(+grad).
#include "absl/strings/str_format.h"
#include "runtime/cuda/cuda_ops.h"
#include "runtime/cuda/cuda_status.h"

namespace galaxy::rt::cuda {
namespace {

using cpu::checkArity;
using cpu::checkDtype;
using cpu::kernelError;
using cpu::rowCount;

// take_token(_grad): x/dx [B,S,H] against y/dy [B,H], the `index`
// attribute and the optional indices [B] (input 1; then index must be 0).
// Returns the index; the caller has checked the arity.
absl::StatusOr<int64_t> checkTakeToken(const cpu::KernelCall &c,
                                       const Tensor &full, const Tensor &tok,
                                       const char *shapes) {
  GALAXY_CUDA_RETURN_IF_ERROR(
      checkDtype(c, full, plan::F32, "the [B,S,H] tensor"));
  GALAXY_CUDA_RETURN_IF_ERROR(
      checkDtype(c, tok, plan::F32, "the [B,H] tensor"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t index, cpu::intAttr(c, "index"));
  if (full.shape.size() != 3 || tok.shape.size() != 2 ||
      tok.shape[0] != full.shape[0] || tok.shape[1] != full.shape[2])
    return kernelError(c, shapes);
  if (c.in.size() > 1) {
    const Tensor &indices = c.in[1];
    GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, indices, plan::I32, "indices"));
    if (indices.numel() != full.shape[0])
      return kernelError(
          c, absl::StrFormat("indices must be [B] = [%d]", full.shape[0]));
    if (index != 0)
      return kernelError(c, "attribute index must be 0 with per-row indices");
    return index;
  }
  if (index < 0 || index >= full.shape[1])
    return kernelError(c, absl::StrFormat("attribute index=%d outside [0,%d)",
                                          index, full.shape[1]));
  return index;
}

const int32_t *indicesOf(const cpu::KernelCall &c) {
  return c.in.size() > 1 ? c.in[1].i32() : nullptr;
}

// After a take_token(_grad) launch: a per-row index outside [0, s) is an
// error naming the row, as on the CPU.
absl::Status checkIndices(const CudaOp &op, int64_t b, int64_t s) {
  constexpr const char *kWhat = "take_token index check";
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t bad, firstBadRow(op, kWhat));
  if (bad >= b)
    return absl::OkStatus();
  GALAXY_CUDA_ASSIGN_OR_RETURN(int32_t index,
                               deviceI32At(op, indicesOf(op.c), bad, kWhat));
  return kernelError(
      op.c, absl::StrFormat("indices[%d]=%d outside [0,%d)", bad, index, s));
}

} // namespace

absl::Status embeddingOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t vocabOffset,
                               cpu::intAttr(c, "vocab_offset"));
  // padding_idx only changes the gradient; read it so a mistyped one fails.
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::intAttr(c, "padding_idx").status());
  const Tensor &table = c.in[0], &ids = c.in[1], &y = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, table, plan::F32, "table"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, ids, plan::I32, "ids"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, y, plan::F32, "y"));
  if (table.shape.size() != 2 || y.shape.empty() ||
      y.shape.back() != table.shape[1] || rowCount(y) != ids.numel())
    return kernelError(c, "needs table [V,H], ids [...] and y [...,H]");
  return launched(op, launchEmbedding(table.f32(), table.shape[0],
                                      table.shape[1], ids.i32(), ids.numel(),
                                      vocabOffset, y.f32(), op.env.stream));
}

absl::Status embeddingGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t vocabOffset,
                               cpu::intAttr(c, "vocab_offset"));
  // A global id (compared before vocab_offset), as torch.nn.Embedding's.
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t paddingIdx,
                               cpu::intAttr(c, "padding_idx"));
  const Tensor &ids = c.in[0], &dy = c.in[1], &dt = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, ids, plan::I32, "ids"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, dy, plan::F32, "dy"));
  GALAXY_CUDA_RETURN_IF_ERROR(checkDtype(c, dt, plan::F32, "dtable"));
  if (dt.shape.size() != 2 || dy.shape.empty() ||
      dy.shape.back() != dt.shape[1] || rowCount(dy) != ids.numel())
    return kernelError(c, "needs ids [...], dy [...,H] and dtable [V,H]");
  // dtable = beta·dtable + alpha·scatter(dy) (fused SGD: see the CPU kernel).
  GALAXY_CUDA_ASSIGN_OR_RETURN(double alpha, cpu::floatAttr(c, "alpha"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double beta, cpu::floatAttr(c, "beta"));
  const int64_t rows = ids.numel();
  const int64_t bytes = embeddingGradScratch(rows);
  GALAXY_CUDA_ASSIGN_OR_RETURN(void *scratch, op.env.scratch->get(bytes));
  return launched(op, launchEmbeddingGrad(ids.i32(), dy.f32(), rows,
                                          dt.shape[0], dt.shape[1], vocabOffset,
                                          paddingIdx, static_cast<float>(alpha),
                                          static_cast<float>(beta), dt.f32(),
                                          scratch, bytes, op.env.stream));
}

absl::Status takeTokenOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(op.c, 1, 2, 1));
  const Tensor &x = op.c.in[0], &y = op.c.out[0];
  GALAXY_CUDA_ASSIGN_OR_RETURN(
      int64_t index, checkTakeToken(op.c, x, y, "needs x [B,S,H] and y [B,H]"));
  const int64_t b = x.shape[0], s = x.shape[1];
  const int32_t *indices = indicesOf(op.c);
  if (indices)
    GALAXY_CUDA_RETURN_IF_ERROR(resetBadRow(op, b));
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchTakeToken(x.f32(), y.f32(), b, s, x.shape[2], index,
                                   indices, op.env.badRow, op.env.stream)));
  return indices ? checkIndices(op, b, s) : absl::OkStatus();
}

absl::Status takeTokenGradOp(const CudaOp &op) {
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(op.c, 1, 2, 1));
  const Tensor &dy = op.c.in[0], &dx = op.c.out[0];
  GALAXY_CUDA_ASSIGN_OR_RETURN(
      int64_t index,
      checkTakeToken(op.c, dx, dy, "needs dy [B,H] and dx [B,S,H]"));
  const int64_t b = dx.shape[0], s = dx.shape[1];
  const int32_t *indices = indicesOf(op.c);
  if (indices)
    GALAXY_CUDA_RETURN_IF_ERROR(resetBadRow(op, b));
  GALAXY_CUDA_RETURN_IF_ERROR(launched(
      op, launchTakeTokenGrad(dy.f32(), dx.f32(), b, s, dx.shape[2], index,
                              indices, op.env.badRow, op.env.stream)));
  return indices ? checkIndices(op, b, s) : absl::OkStatus();
}

} // namespace galaxy::rt::cuda
