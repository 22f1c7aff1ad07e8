// Single-precision GEMM over the libraries this machine has (oneDNN, OpenBLAS,
// a naive loop), and the start-up choice between them (docs: TOOLCHAIN.md "GEMM
// on this CPU").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galaxy::rt::cpu {

// kOneDnn is dnnl_sgemm, kOneDnnMatmul oneDNN's matmul primitive (brgemm
// kernels), kGalaxy Galaxy's own AVX-512 GEMM (galaxy_sgemm.cc). kPerShape
// times them on each GEMM shape at its first use and keeps the fastest
// (remembered per machine, see chooseGemm).
enum class GemmKind {
  kOneDnn,
  kOpenBlas,
  kNaive,
  kPerShape,
  kOneDnnMatmul,
  kGalaxy
};

// "onednn" | "openblas" | "naive" | "per-shape" | "onednn-matmul" | "galaxy"
std::string_view gemmKindName(GemmKind kind);
// The library (and its ISA / thread count) in human words.
std::string gemmLibraryName(GemmKind kind, int threads);
absl::StatusOr<GemmKind> parseGemmKind(std::string_view name);

// Row-major C[m,n] = alpha·op(A)·op(B) + beta·C with op(A) [m,k], op(B) [k,n];
// lda/ldb/ldc are row strides of A, B, C as stored.
using SgemmFn = absl::Status (*)(bool trans_a, bool trans_b, int64_t m,
                                 int64_t n, int64_t k, float alpha,
                                 const float *a, int64_t lda, const float *b,
                                 int64_t ldb, float beta, float *c,
                                 int64_t ldc);
SgemmFn sgemmFor(GemmKind kind);

// The kOneDnnMatmul GEMM (onednn_matmul.cc).
absl::Status onednnMatmulSgemm(bool trans_a, bool trans_b, int64_t m, int64_t n,
                               int64_t k, float alpha, const float *a,
                               int64_t lda, const float *b, int64_t ldb,
                               float beta, float *c, int64_t ldc);

// The kGalaxy GEMM (galaxy_sgemm.cc): AVX-512 tiles built for a training
// step's shapes (one small operand, a weight read cold once per use; the
// weight is packed only panel by panel as it is used, or, in x·wᵀ, not at
// all). Aᵀ·Bᵀ, and any CPU without AVX-512, go to oneDNN:
bool galaxySgemmAvailable();
bool galaxySgemmBuilt(bool trans_a, bool trans_b);
absl::Status galaxySgemm(bool trans_a, bool trans_b, int64_t m, int64_t n,
                         int64_t k, float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float beta, float *c,
                         int64_t ldc);
// C = A·Bᵀ + bias (bias [n] added in the tiles' epilogue: a linear's
// forward); without AVX-512 the bias copied into C, then oneDNN with beta 1.
absl::Status galaxySgemmBias(int64_t m, int64_t n, int64_t k, const float *a,
                             int64_t lda, const float *b, int64_t ldb,
                             const float *bias, float *c, int64_t ldc);

// C = op(A)·op(B) + bias, the bias [n] added to every row in the primitive's
// epilogue (a linear layer's forward without a pass writing the bias into C
// first). The same bits as onednnMatmulSgemm with C holding the bias and
// beta = 1 (tests/kernels/gemm_bias_test.cc).
absl::Status onednnMatmulSgemmBias(bool trans_a, bool trans_b, int64_t m,
                                   int64_t n, int64_t k, const float *a,
                                   int64_t lda, const float *b, int64_t ldb,
                                   const float *bias, float *c, int64_t ldc);

// batch independent products C_i = alpha·op(A_i)·op(B_i), every matrix dense
// and stored one after another, as one oneDNN matmul primitive (attention's
// many small matrices: one call instead of one GEMM each), on `threads`
// OpenMP threads (0: the current default).
absl::Status onednnBatchedMatmul(int64_t batch, bool trans_a, bool trans_b,
                                 int64_t m, int64_t n, int64_t k, float alpha,
                                 const float *a, const float *b, float *c,
                                 int threads = 0);

// bf16 plans (docs/kernels.md "Matmul precision"): the same oneDNN matmul
// primitive with A and B as bfloat16 bits (bf16_copies.h) and C fp32, products
// summed in fp32. Whether this CPU runs it natively (AVX512-BF16 or AMX; else
// bf16 plans keep the fp32 GEMM over rounded copies):
bool nativeBf16Matmul();
absl::Status onednnMatmulBf16(bool trans_a, bool trans_b, int64_t m, int64_t n,
                              int64_t k, float alpha, const uint16_t *a,
                              int64_t lda, const uint16_t *b, int64_t ldb,
                              float beta, float *c, int64_t ldc);
// C = op(A)·op(B) + bias with bf16 A and B, the fp32 bias [n] added in the
// epilogue (onednnMatmulSgemmBias's bf16 twin: a bf16 linear's forward).
absl::Status onednnMatmulBf16Bias(bool trans_a, bool trans_b, int64_t m,
                                  int64_t n, int64_t k, const uint16_t *a,
                                  int64_t lda, const uint16_t *b, int64_t ldb,
                                  const float *bias, float *c, int64_t ldc);
absl::Status onednnBatchedMatmulBf16(int64_t batch, bool trans_a, bool trans_b,
                                     int64_t m, int64_t n, int64_t k,
                                     float alpha, const uint16_t *a,
                                     const uint16_t *b, float *c,
                                     int threads = 0);

// The kPerShape GEMM: looks the shape up (ta, tb, m, n, k, strides, thread
// count) and, the first time, times the libraries into scratch memory.
absl::Status perShapeSgemm(bool trans_a, bool trans_b, int64_t m, int64_t n,
                           int64_t k, float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c,
                           int64_t ldc);

// The library the per-shape table holds for this shape (ta, tb, m, n, k,
// strides; this process's thread count), without timing anything: nullopt until
// perShapeSgemm has met the shape.
std::optional<GemmKind> perShapeKnownKind(bool trans_a, bool trans_b, int64_t m,
                                          int64_t n, int64_t k, int64_t lda,
                                          int64_t ldb, int64_t ldc);

// Thread count for both libraries (OpenMP for oneDNN, OpenBLAS's own pool).
// Process-wide: a backend calls it before each kernel, and it is a no-op while
// the count is unchanged.
void setGemmThreads(int threads);

// GALAXY_THREADS if set (a positive integer), else the number of cores. `note`
// is non-empty when the variable was set but unusable.
struct ThreadChoice {
  int threads = 1;
  std::string note;
};
ThreadChoice threadsFromEnv();

// GFLOP/s of `kind` on the BERT-like shapes 128x768x768 and 128x3072x768 (best
// of `reps`).
double measureGemmGflops(GemmKind kind, int reps);

struct GemmChoice {
  GemmKind kind = GemmKind::kNaive;
  std::string description; // the start-up line, see Backend::gemmDescription()
};
// `forced` (or else GALAXY_GEMM=onednn|onednn-matmul|openblas|galaxy|naive|
// per-shape) wins;
// otherwise kPerShape: each shape's faster library, measured at its first use
// and remembered in $XDG_CACHE_HOME/galaxy/gemm-shapes.txt (~/.cache/...) per
// CPU model and thread count, so later processes make the same choices and
// same-seed runs stay bit-identical. GALAXY_GEMM=measure re-measures.
GemmChoice chooseGemm(int threads, std::optional<GemmKind> forced);

} // namespace galaxy::rt::cpu
