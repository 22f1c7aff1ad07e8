// linear, linear_weight_grad, matmul through cuBLAS (bf16 operands in bf16
// plans); bias_grad as deterministic column sums.
#include <cstdint>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/cuda/cuda_ops.h"
#include "runtime/cuda/cuda_status.h"

namespace galaxy::rt::cuda {
namespace {

using cpu::checkArity;
using cpu::kernelError;
using cpu::rowCount;

// One row-major operand of a GEMM: `elems` floats from `data` (the whole
// tensor, batch included), `ld` its row stride, `stride` the distance between
// batch matrices.
struct Operand {
  const float *data;
  int64_t elems, ld, stride;
};

// bf16 plans (docs/kernels.md "Matmul precision"): A and B are rounded to
// bfloat16 into the backend's device scratch (A first, B from the next
// 256-byte boundary), and cuBLAS multiplies them accumulating in fp32 into
// the fp32 C. C itself is never rounded: it may hold the bias or, under beta,
// fused SGD's fp32 parameter.
absl::StatusOr<std::pair<const void *, const void *>>
bf16Operands(const CudaOp &op, const Operand &a, const Operand &b) {
  const size_t aBytes = (a.elems * sizeof(uint16_t) + 255) / 256 * 256;
  GALAXY_CUDA_ASSIGN_OR_RETURN(
      void *scratch, op.env.scratch->get(aBytes + b.elems * sizeof(uint16_t)));
  auto *a16 = static_cast<uint16_t *>(scratch);
  auto *b16 =
      reinterpret_cast<uint16_t *>(static_cast<char *>(scratch) + aBytes);
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchToBf16(a.data, a16, a.elems, op.env.stream)));
  GALAXY_CUDA_RETURN_IF_ERROR(
      launched(op, launchToBf16(b.data, b16, b.elems, op.env.stream)));
  return std::make_pair(static_cast<const void *>(a16),
                        static_cast<const void *>(b16));
}

// Row-major C[M,N] = alpha·op(A)·op(B) + beta·C, `batch` times with strides.
// cuBLAS is column-major and a row-major matrix is its transpose there, so
// this computes Cᵀ = op(B)ᵀ·op(A)ᵀ: B comes first and M, N swap.
absl::Status gemmRowMajor(const CudaOp &op, bool ta, bool tb, int64_t m,
                          int64_t n, int64_t k, float alpha, const Operand &a,
                          const Operand &b, float beta, float *c, int64_t ldc,
                          int64_t strideC, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0)
    return absl::OkStatus();
  const int64_t limit = INT32_MAX;
  if (m > limit || n > limit || k > limit || batch > limit)
    return kernelError(op.c, "a GEMM dimension exceeds cuBLAS's int range");
  const cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int in = static_cast<int>(n), im = static_cast<int>(m),
            ik = static_cast<int>(k), ilda = static_cast<int>(a.ld),
            ildb = static_cast<int>(b.ld), ildc = static_cast<int>(ldc);
  cublasStatus_t s;
  if (op.c.ctx.matmulDType == plan::MATMUL_BF16) {
    GALAXY_CUDA_ASSIGN_OR_RETURN(auto ab, bf16Operands(op, a, b));
    if (batch == 1)
      s = cublasGemmEx(op.env.blas, opB, opA, in, im, ik, &alpha, ab.second,
                       CUDA_R_16BF, ildb, ab.first, CUDA_R_16BF, ilda, &beta, c,
                       CUDA_R_32F, ildc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT);
    else
      s = cublasGemmStridedBatchedEx(
          op.env.blas, opB, opA, in, im, ik, &alpha, ab.second, CUDA_R_16BF,
          ildb, b.stride, ab.first, CUDA_R_16BF, ilda, a.stride, &beta, c,
          CUDA_R_32F, ildc, strideC, static_cast<int>(batch),
          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  } else if (batch == 1) {
    s = cublasSgemm(op.env.blas, opB, opA, in, im, ik, &alpha, b.data, ildb,
                    a.data, ilda, &beta, c, ildc);
  } else {
    s = cublasSgemmStridedBatched(op.env.blas, opB, opA, in, im, ik, &alpha,
                                  b.data, ildb, b.stride, a.data, ilda,
                                  a.stride, &beta, c, ildc, strideC,
                                  static_cast<int>(batch));
  }
  return cublasStatus(s,
                      absl::StrFormat("kernel '%s' (block '%s')",
                                      op.c.instr.kernel(), op.c.instr.block()));
}

} // namespace

absl::Status linearOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 3, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t transposeW,
                               cpu::intAttr(c, "transpose_w"));
  const Tensor &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (x.shape.empty() || w.shape.size() != 2 || y.shape.empty())
    return kernelError(c, "x needs rank >= 1, w rank 2, y rank >= 1");
  const int64_t k = x.shape.back(), m = rowCount(x);
  const int64_t n = transposeW ? w.shape[0] : w.shape[1];
  if ((transposeW ? w.shape[1] : w.shape[0]) != k || y.shape.back() != n ||
      rowCount(y) != m)
    return kernelError(
        c,
        absl::StrFormat("with transpose_w=%d, x[...,K] and w must agree on K "
                        "and y must be x's rows by N",
                        transposeW));
  float beta = 0.f;
  if (c.in.size() == 3) {
    const Tensor &b = c.in[2];
    // [N], or [1, N] (a Hugging Face buffer such as final_logits_bias).
    if (b.numel() != n || b.shape.back() != n)
      return kernelError(c, "bias must be [N] or [1, N]");
    GALAXY_CUDA_RETURN_IF_ERROR(launched(
        op, launchBroadcastRows(b.f32(), y.f32(), m, n, op.env.stream)));
    beta = 1.f; // the GEMM accumulates onto the broadcast bias
  }
  return gemmRowMajor(
      op, false, transposeW != 0, m, n, k, 1.f, {x.f32(), x.numel(), k, 0},
      {w.f32(), w.numel(), transposeW ? k : n, 0}, beta, y.f32(), n, 0, 1);
}

absl::Status linearWeightGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &dy = c.in[0], &x = c.in[1], &dw = c.out[0];
  if (dy.shape.empty() || x.shape.empty() || dw.shape.size() != 2)
    return kernelError(c, "dy and x need rank >= 1, dw rank 2");
  const int64_t n = dy.shape.back(), k = x.shape.back(), rows = rowCount(dy);
  if (rowCount(x) != rows || dw.shape[0] != n || dw.shape[1] != k)
    return kernelError(
        c,
        "dy[...,N] and x[...,K] must have the same rows and dw must be [N,K]");
  // dw[N,K] = alpha·dyᵀ[N,rows]·x[rows,K] + beta·dw (fused SGD: see the CPU
  // kernel).
  GALAXY_CUDA_ASSIGN_OR_RETURN(double alpha, cpu::floatAttr(c, "alpha"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double beta, cpu::floatAttr(c, "beta"));
  return gemmRowMajor(op, true, false, n, k, rows, static_cast<float>(alpha),
                      {dy.f32(), dy.numel(), n, 0}, {x.f32(), x.numel(), k, 0},
                      static_cast<float>(beta), dw.f32(), k, 0, 1);
}

absl::Status checkBiasGrad(const cpu::KernelCall &c, const Tensor &dy,
                           const Tensor &db) {
  if (dy.shape.empty())
    return kernelError(c, "dy needs rank >= 1");
  if (db.numel() != dy.shape.back())
    return kernelError(c, "db must be [N] for dy[...,N]");
  return absl::OkStatus();
}

absl::Status columnSumsInto(const CudaOp &op, const float *dy, int64_t rows,
                            int64_t n, float *db) {
  GALAXY_CUDA_ASSIGN_OR_RETURN(
      void *scratch,
      op.env.scratch->get(columnSumsScratch(rows, n) * sizeof(float)));
  return launched(op, launchColumnSums(dy, rows, n, db,
                                       static_cast<float *>(scratch),
                                       op.env.stream));
}

absl::Status biasGradOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  const Tensor &dy = c.in[0], &db = c.out[0];
  GALAXY_CUDA_RETURN_IF_ERROR(checkBiasGrad(c, dy, db));
  return columnSumsInto(op, dy.f32(), rowCount(dy), dy.shape.back(), db.f32());
}

absl::Status matmulOp(const CudaOp &op) {
  const cpu::KernelCall &c = op.c;
  GALAXY_CUDA_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CUDA_RETURN_IF_ERROR(cpu::checkAllF32(c));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t ta, cpu::intAttr(c, "transpose_a"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(int64_t tb, cpu::intAttr(c, "transpose_b"));
  GALAXY_CUDA_ASSIGN_OR_RETURN(double alpha, cpu::floatAttr(c, "alpha"));
  const Tensor &a = c.in[0], &b = c.in[1], &y = c.out[0];
  const size_t rank = a.shape.size();
  if (rank < 2 || b.shape.size() != rank || y.shape.size() != rank)
    return kernelError(c, "a, b and c need the same rank >= 2");
  int64_t batch = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (a.shape[d] != b.shape[d] || a.shape[d] != y.shape[d])
      return kernelError(c, "batch dims (all but the last two) must be equal");
    batch *= a.shape[d];
  }
  const int64_t ar = a.shape[rank - 2], ac = a.shape[rank - 1];
  const int64_t br = b.shape[rank - 2], bc = b.shape[rank - 1];
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac;
  const int64_t kb = tb ? bc : br, n = tb ? br : bc;
  if (k != kb || y.shape[rank - 2] != m || y.shape[rank - 1] != n)
    return kernelError(
        c,
        absl::StrFormat("with transpose_a=%d transpose_b=%d, op(a) is [%d,%d] "
                        "and op(b) [%d,%d]: inner dims and c must match",
                        ta, tb, m, k, kb, n));
  return gemmRowMajor(op, ta != 0, tb != 0, m, n, k, static_cast<float>(alpha),
                      {a.f32(), a.numel(), ac, ar * ac},
                      {b.f32(), b.numel(), bc, br * bc}, 0.f, y.f32(), n, m * n,
                      batch);
}

} // namespace galaxy::rt::cuda
