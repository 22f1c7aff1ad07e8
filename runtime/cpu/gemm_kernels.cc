// linear, linear_weight_grad, matmul: everything matmul-like goes through the
// GEMM (bias_grad, a column sum, is in dropout_kernel.cc with its fused form).
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/bf16_copies.h"
#include "runtime/cpu/bf16_kernels.h"
#include "runtime/cpu/gemv.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/library_env.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {
namespace {

// Batched matrices at most this big (m·n·k) are spread over threads one matrix
// each.
constexpr int64_t kSmallMatrix = 64 * 64 * 64;

// Batched products below this many multiply-adds run on the calling thread.
// Where idle OpenMP threads sleep (PASSIVE), ~80 us of work on one core, what
// waking the second nearly costs: BERT's 48 attention matrices of 32x32x64
// took 67 us on one thread and 104 us on two (Zen 4). Where they spin a while
// first (library_env.h), the second thread is usually still awake: the same
// matrices took 56-66 us on one thread and 36-44 on two (Zen 5, session 11).
int64_t oneThreadMacs() {
  static const int64_t macs =
      openmpThreadsSpin() ? int64_t{1} << 18 : int64_t{1} << 22;
  return macs;
}

// This thread's scratch for GEMM operand `slot` (0: A, 1: B), at least n
// floats. It only grows, so a training step allocates only for new shapes.
float *operandScratch(int slot, int64_t n) {
  thread_local std::vector<float> buffers[2];
  std::vector<float> &b = buffers[slot];
  if (b.size() < static_cast<size_t>(n))
    b.resize(n);
  return b.data();
}

// What the GEMM reads for operand `t`: t itself in fp32 plans; in bf16 plans
// (docs/kernels.md "Matmul precision") a copy rounded to bfloat16, kept in
// fp32 containers. A bf16 x bf16 product is exact in fp32, so the fp32 GEMM
// over the copies is a bf16 GEMM accumulating in fp32, up to summation order.
// Only A and B go through here: C (the bias, or fused SGD's parameter under
// beta) stays fp32.
const float *gemmOperand(const KernelCall &c, const Tensor &t, int slot) {
  if (c.ctx.matmulDType != plan::MATMUL_BF16)
    return t.f32();
  const int64_t n = t.numel();
  float *copy = operandScratch(slot, n);
  const float *src = t.f32();
  parallelChunks(n, 1, c.env.threads, [&](int64_t i0, int64_t i1) {
    roundToBf16(src + i0, copy + i0, i1 - i0);
  });
  return copy;
}

// Native bf16 (CpuEnv::nativeBf16): the operands go to oneDNN's bf16 matmul
// as bfloat16 bits, the same rounding as gemmOperand's copies, so both paths
// multiply the same values and differ only in fp32 summation order.
bool nativeBf16(const KernelCall &c) {
  return c.ctx.matmulDType == plan::MATMUL_BF16 && c.env.nativeBf16;
}

// This thread's bf16 scratch for operand `slot`, at least n halves.
uint16_t *bf16Scratch(int slot, int64_t n) {
  thread_local std::vector<uint16_t> buffers[2];
  std::vector<uint16_t> &b = buffers[slot];
  if (b.size() < static_cast<size_t>(n))
    b.resize(n);
  return b.data();
}

// Operand `t` as bfloat16 bits: a parameter's cached copy (rounded once per
// update, see bf16Weights; `hold` keeps it), anything else rounded into
// scratch.
const uint16_t *bf16Operand(const KernelCall &c, const Tensor &t, int slot,
                            Bf16Bits &hold) {
  const int64_t n = t.numel();
  if (t.param && c.ctx.weightsVersion != 0) {
    hold = bf16Weights(t.f32(), n, c.ctx.weightsVersion, c.env.threads);
    return hold.get();
  }
  uint16_t *copy = bf16Scratch(slot, n);
  toBf16(t.f32(), copy, n, c.env.threads);
  return copy;
}

// The fp32 GEMM that adds linear's bias in its epilogue for this shape
// (oneDNN's matmul primitive, or Galaxy's x·wᵀ tiles), else kNaive: the bias
// is copied into every row of C and the GEMM accumulates onto it. Both
// epilogues give the copy's bits (tests/kernels/gemm_bias_test.cc,
// galaxy_sgemm_test.cc). A shape
// the per-shape table has not met yet takes the copy once (perShapeSgemm
// times it); the few-row GEMV path always does.
GemmKind epilogueBiasGemm(const KernelCall &c, bool gemv, bool tw, int64_t m,
                          int64_t n, int64_t k) {
  GemmKind kind = c.env.gemm;
  if (kind == GemmKind::kPerShape)
    kind = perShapeKnownKind(false, tw, m, n, k, k, tw ? k : n, n)
               .value_or(GemmKind::kNaive);
  if (gemv || !(kind == GemmKind::kOneDnnMatmul ||
                (kind == GemmKind::kGalaxy && tw && galaxySgemmAvailable())))
    return GemmKind::kNaive;
  return kind;
}

// Whether a bf16 linear runs Galaxy's own kernel (bf16Linear) rather than
// oneDNN's matmul: x·wᵀ with an even k, x's rows filling its 64-lane tiles to
// at least 7/8 (measured: 64 rows 347 vs 331 GFLOP/s, 128 rows 382 vs 356,
// but 96 rows 296 vs 340; decode takes the GEMV) and within its design range.
bool bf16OwnLinear(const KernelCall &c, bool gemv, bool tw, int64_t m,
                   int64_t k) {
  const int64_t lanes = (m + 63) / 64 * 64;
  return nativeBf16(c) && !gemv && tw && k % 2 == 0 && m > 0 &&
         8 * (lanes - m) <= lanes && 2 * lanes * k <= kBf16LinearMaxPackedBytes;
}

} // namespace

absl::Status linearKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 3, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t transpose_w, intAttr(c, "transpose_w"));
  const Tensor &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (x.shape.empty() || w.shape.size() != 2 || y.shape.empty())
    return kernelError(c, "x needs rank >= 1, w rank 2, y rank >= 1");
  const int64_t k = x.shape.back(), m = rowCount(x);
  const int64_t n = transpose_w ? w.shape[0] : w.shape[1];
  if ((transpose_w ? w.shape[1] : w.shape[0]) != k || y.shape.back() != n ||
      rowCount(y) != m)
    return kernelError(
        c,
        absl::StrFormat("with transpose_w=%d, x[...,K] and w must agree on K "
                        "and y must be x's rows by N",
                        transpose_w));
  float *yp = y.f32();
  float beta = 0.f;
  // Inference with a few rows (decode): the product reads each weight once.
  const bool gemv =
      transpose_w && m <= kGemvMaxRows && c.ctx.paramsVersion != 0 && w.param;
  const float *bp = nullptr;
  if (c.in.size() == 3) {
    const Tensor &b = c.in[2];
    // [N], or [1, N] (a Hugging Face buffer such as final_logits_bias).
    if (b.numel() != n || b.shape.back() != n)
      return kernelError(c, "bias must be [N] or [1, N]");
    bp = b.f32();
  }
  if (bf16OwnLinear(c, gemv, transpose_w != 0, m, k)) {
    Bf16Bits wh;
    bf16Linear(x.f32(), bf16Operand(c, w, 1, wh), bp, yp, m, n, k,
               c.env.threads);
    return absl::OkStatus();
  }
  if (bp) {
    // The bias in the GEMM's epilogue where it has one (native bf16: oneDNN's
    // bf16 matmul; fp32: epilogueBiasGemm), else copied into every row of C.
    if (!gemv && nativeBf16(c)) {
      Bf16Bits xh, wh;
      return onednnMatmulBf16Bias(
          false, transpose_w != 0, m, n, k, bf16Operand(c, x, 0, xh), k,
          bf16Operand(c, w, 1, wh), transpose_w ? k : n, bp, yp, n);
    }
    if (c.ctx.matmulDType != plan::MATMUL_BF16)
      switch (epilogueBiasGemm(c, gemv, transpose_w != 0, m, n, k)) {
      case GemmKind::kGalaxy:
        return galaxySgemmBias(m, n, k, x.f32(), k, w.f32(), k, bp, yp, n);
      case GemmKind::kOneDnnMatmul:
        return onednnMatmulSgemmBias(false, transpose_w != 0, m, n, k, x.f32(),
                                     k, w.f32(), transpose_w ? k : n, bp, yp,
                                     n);
      default:
        break;
      }
    parallelChunks(m, n, c.env.threads, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        std::memcpy(yp + r * n, bp, n * sizeof(float));
    });
    beta = 1.f; // the GEMM accumulates onto the broadcast bias
  }
  if (gemv) {
    if (c.ctx.matmulDType != plan::MATMUL_BF16) {
      gemvRows(m, n, k, x.f32(), w.f32(), yp, beta != 0.f, c.env.threads);
    } else {
      const Bf16Bits wb =
          bf16Weights(w.f32(), w.numel(), c.ctx.paramsVersion, c.env.threads);
      gemvRowsBf16(m, n, k, gemmOperand(c, x, 0), wb.get(), yp, beta != 0.f,
                   c.env.threads);
    }
    return absl::OkStatus();
  }
  if (nativeBf16(c)) {
    Bf16Bits xh, wh;
    if (!transpose_w && beta == 0.f && k % 2 == 0 &&
        m <= kBf16InputGradMaxRows) {
      // x·w (dy·w, the input gradient of x·wᵀ): Galaxy's kernel over w's
      // copy as kept.
      bf16InputGrad(bf16Operand(c, x, 0, xh), bf16Operand(c, w, 1, wh), yp, m,
                    k, n, c.env.threads);
      return absl::OkStatus();
    }
    return onednnMatmulBf16(
        false, transpose_w != 0, m, n, k, 1.f, bf16Operand(c, x, 0, xh), k,
        bf16Operand(c, w, 1, wh), transpose_w ? k : n, beta, yp, n);
  }
  const float *xp = gemmOperand(c, x, 0), *wp = gemmOperand(c, w, 1);
  return c.env.sgemm(false, transpose_w != 0, m, n, k, 1.f, xp, k, wp,
                     transpose_w ? k : n, beta, yp, n);
}

absl::Status linearWeightGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &dy = c.in[0], &x = c.in[1], &dw = c.out[0];
  if (dy.shape.empty() || x.shape.empty() || dw.shape.size() != 2)
    return kernelError(c, "dy and x need rank >= 1, dw rank 2");
  const int64_t n = dy.shape.back(), k = x.shape.back(), rows = rowCount(dy);
  if (rowCount(x) != rows || dw.shape[0] != n || dw.shape[1] != k)
    return kernelError(
        c,
        "dy[...,N] and x[...,K] must have the same rows and dw must be [N,K]");
  // dw[N,K] = alpha·dyᵀ[N,rows]·x[rows,K] + beta·dw. With dw the parameter,
  // alpha = -lr and beta = 1 - lr·wd this is the whole SGD step (the lowering
  // fuses them): no gradient buffer is written and read back.
  GALAXY_CPU_ASSIGN_OR_RETURN(double alpha, floatAttr(c, "alpha"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double beta, floatAttr(c, "beta"));
  if (nativeBf16(c)) {
    if (rows > kBf16WeightGradMaxRows) {
      // Long sums: oneDNN's blocked GEMM with the update as its epilogue, then
      // the parameter's copy rounded again (refreshWrittenBf16Weights leaves
      // linear_weight_grad to this kernel).
      Bf16Bits dyh, xh;
      GALAXY_CPU_RETURN_IF_ERROR(onednnMatmulBf16(
          true, false, n, k, rows, static_cast<float>(alpha),
          bf16Operand(c, dy, 0, dyh), n, bf16Operand(c, x, 1, xh), k,
          static_cast<float>(beta), dw.f32(), k));
      if (dw.param)
        refreshBf16Weights(dw.f32(), n * k, c.ctx.weightsVersion,
                           c.env.threads);
      return absl::OkStatus();
    }
    // One kernel sums each tile of dw in registers and updates it there; on a
    // parameter (fused SGD) it also rounds the parameter's bf16 copy, so
    // refreshWrittenBf16Weights leaves it alone. oneDNN's GEMM into scratch
    // then an update pass moved the product through memory twice more
    // (BERT-base bf16 step 241 -> 220 ms, docs/benchmarks.md session 10).
    auto run = [&](uint16_t *copy) {
      bf16WeightGrad(dy.f32(), x.f32(), rows, n, k, static_cast<float>(alpha),
                     static_cast<float>(beta), dw.f32(), copy, c.env.threads);
    };
    if (dw.param)
      rewriteWithBf16Copy(dw.f32(), n * k, c.ctx.weightsVersion, run);
    else
      run(nullptr);
    return absl::OkStatus();
  }
  const float *dyp = gemmOperand(c, dy, 0), *xp = gemmOperand(c, x, 1);
  return c.env.sgemm(true, false, n, k, rows, static_cast<float>(alpha), dyp, n,
                     xp, k, static_cast<float>(beta), dw.f32(), k);
}

absl::Status matmulKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t ta, intAttr(c, "transpose_a"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t tb, intAttr(c, "transpose_b"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double alpha_d, floatAttr(c, "alpha"));
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
  const float alpha = static_cast<float>(alpha_d);
  float *yp = y.f32();
  if (nativeBf16(c)) {
    const int threads = batch * m * n * k < oneThreadMacs() ? 1 : c.env.threads;
    Bf16Bits ah, bh;
    return onednnBatchedMatmulBf16(batch, ta != 0, tb != 0, m, n, k, alpha,
                                   bf16Operand(c, a, 0, ah),
                                   bf16Operand(c, b, 1, bh), yp, threads);
  }
  const float *ap = gemmOperand(c, a, 0), *bp = gemmOperand(c, b, 1);
  const int64_t sa = ar * ac, sb = br * bc, sy = m * n;
  if (batch > 1 && (c.env.gemm == GemmKind::kPerShape ||
                    c.env.gemm == GemmKind::kOneDnnMatmul)) {
    // One batched primitive: 48 attention matrices of 32x32x64 ran at ~50
    // GFLOP/s as separate GEMMs (per-call overhead). Small batches stay on
    // this thread: waking a sleeping (PASSIVE) OpenMP thread costs ~50 us.
    const int threads = batch * m * n * k < oneThreadMacs() ? 1 : c.env.threads;
    return onednnBatchedMatmul(batch, ta != 0, tb != 0, m, n, k, alpha, ap, bp,
                               yp, threads);
  }
  auto one = [&](int64_t i) {
    return c.env.sgemm(ta != 0, tb != 0, m, n, k, alpha, ap + i * sa, ac,
                       bp + i * sb, bc, 0.f, yp + i * sy, n);
  };
  if (batch > 1 && c.env.threads > 1 && m * n * k <= kSmallMatrix) {
    // Small matrices: one per thread. oneDNN runs single-threaded inside a
    // parallel region, and OpenBLAS does not thread matrices this small.
    absl::Status first = absl::OkStatus();
    parallelChunks(batch, m * n * k, c.env.threads,
                   [&](int64_t i0, int64_t i1) {
                     for (int64_t i = i0; i < i1; ++i) {
                       absl::Status s = one(i);
                       if (!s.ok()) {
#pragma omp critical(galaxy_matmul_status)
                         if (first.ok())
                           first = s;
                       }
                     }
                   });
    return first;
  }
  for (int64_t i = 0; i < batch; ++i)
    GALAXY_CPU_RETURN_IF_ERROR(one(i));
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
