// oneDNN's matmul primitive as a third GEMM (GemmKind::kOneDnnMatmul). Its
// brgemm kernels beat dnnl_sgemm on some BERT shapes (x·Wᵀ with K = 3072: 270
// vs 212 GFLOP/s on an AVX-512 Xeon, 2 threads) and lose on others, so the
// per-shape choice times it beside the other two. A primitive is built once per
// shape, alpha and beta (beta becomes a sum post-op) and kept. bf16 plans run
// the same primitive with bfloat16 A and B and fp32 C (AVX512-BF16 / AMX
// kernels, fp32 accumulation).
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <omp.h>

#include "absl/strings/str_format.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "runtime/cpu/gemm.h"

namespace galaxy::rt::cpu {
namespace {

using dt = dnnl::memory::data_type;

// (batch, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, threads, A/B type,
// bias); batch 0 = 2-D; threads 0 = the OpenMP default.
using Key = std::tuple<int64_t, bool, bool, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, float, float, int, dt, bool>;

// Plans have a handful of distinct (alpha, beta) pairs; a learning-rate
// schedule could make more, so the cache is bounded.
constexpr size_t kMaxPrimitives = 512;

struct PrimitiveCache {
  std::mutex mu;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::map<Key, std::shared_ptr<dnnl::matmul>> prims;
};

PrimitiveCache &cache() {
  static PrimitiveCache c;
  return c;
}

// Row-major op(X)[rows, cols] stored with row stride ld (transposed: X is
// [cols, rows]); batch > 0 adds a leading dimension of stride rows·cols.
dnnl::memory::desc matrix(int64_t batch, bool trans, int64_t rows, int64_t cols,
                          int64_t ld, dt type = dt::f32) {
  dnnl::memory::dims strides =
      trans ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1};
  dnnl::memory::dims dims = {rows, cols};
  if (batch > 0) {
    dims.insert(dims.begin(), batch);
    strides.insert(strides.begin(), rows * cols);
  }
  return dnnl::memory::desc(dims, type, strides);
}

// Runs oneDNN with `threads` OpenMP threads on this thread (0: unchanged); a
// primitive plans its split at creation, so it is built and run alike.
class OmpThreads {
public:
  explicit OmpThreads(int threads) {
    if (threads > 0 && threads != omp_get_max_threads()) {
      saved_ = omp_get_max_threads();
      omp_set_num_threads(threads);
    }
  }
  ~OmpThreads() {
    if (saved_ > 0)
      omp_set_num_threads(saved_);
  }

private:
  int saved_ = 0; // the count to restore; 0: unchanged
};

// A and B of `type` (f32 or bf16), C f32; `bias` (2-D only, may be null) an
// f32 [n] added to every row of C in the primitive's epilogue.
absl::Status run(dt type, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                 int64_t k, float alpha, const void *a, int64_t lda,
                 const void *b, int64_t ldb, float beta, float *c, int64_t ldc,
                 int threads = 0, const float *bias = nullptr) {
  OmpThreads pin(threads);
  const dnnl::memory::desc amd = matrix(batch, ta, m, k, lda, type),
                           bmd = matrix(batch, tb, k, n, ldb, type),
                           cmd = matrix(batch, false, m, n, ldc);
  const dnnl::memory::desc biasmd =
      bias ? dnnl::memory::desc({1, n}, dt::f32, dnnl::memory::dims{n, 1})
           : dnnl::memory::desc();
  PrimitiveCache &pc = cache();
  std::shared_ptr<dnnl::matmul> prim;
  try {
    const Key key{batch, ta,  tb,    m,    n,       k,    lda,
                  ldb,   ldc, alpha, beta, threads, type, bias != nullptr};
    {
      std::lock_guard<std::mutex> lock(pc.mu);
      auto it = pc.prims.find(key);
      if (it != pc.prims.end()) {
        prim = it->second;
      } else {
        dnnl::primitive_attr attr;
        if (alpha != 1.f)
          attr.set_output_scales(0, {alpha});
        if (beta != 0.f) {
          dnnl::post_ops ops;
          ops.append_sum(beta);
          attr.set_post_ops(ops);
        }
        dnnl::matmul::primitive_desc pd(
            bias ? dnnl::matmul::desc(amd, bmd, biasmd, cmd)
                 : dnnl::matmul::desc(amd, bmd, cmd),
            attr, pc.engine);
        if (pc.prims.size() >= kMaxPrimitives)
          pc.prims.clear();
        prim = std::make_shared<dnnl::matmul>(pd);
        pc.prims.emplace(key, prim);
      }
    }
    // Streams are cheap; one per calling thread (batched matmuls call from
    // several).
    thread_local dnnl::stream stream(pc.engine);
    dnnl::memory am(amd, pc.engine, const_cast<void *>(a)),
        bm(bmd, pc.engine, const_cast<void *>(b)), cm(cmd, pc.engine, c);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    if (bias)
      args.emplace(DNNL_ARG_BIAS,
                   dnnl::memory(biasmd, pc.engine, const_cast<float *>(bias)));
    prim->execute(stream, args);
    stream.wait();
  } catch (const dnnl::error &e) {
    return absl::InternalError(absl::StrFormat(
        "oneDNN %s matmul (batch %d, %c%c, m=%d n=%d k=%d "
        "lda=%d ldb=%d ldc=%d) failed: %s",
        type == dt::bf16 ? "bf16" : "fp32", batch, ta ? 'T' : 'N',
        tb ? 'T' : 'N', m, n, k, lda, ldb, ldc, e.what()));
  }
  return absl::OkStatus();
}

// C = op(A)·op(B) + bias for A and B of `type`.
absl::Status matmulBias(dt type, bool ta, bool tb, int64_t m, int64_t n,
                        int64_t k, const void *a, int64_t lda, const void *b,
                        int64_t ldb, const float *bias, float *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) { // oneDNN wants k >= 1; C = the bias in every row
    for (int64_t r = 0; r < m; ++r)
      std::copy(bias, bias + n, c + r * ldc);
    return absl::OkStatus();
  }
  return run(type, 0, ta, tb, m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc, 0,
             bias);
}

} // namespace

absl::Status onednnMatmulSgemm(bool ta, bool tb, int64_t m, int64_t n,
                               int64_t k, float alpha, const float *a,
                               int64_t lda, const float *b, int64_t ldb,
                               float beta, float *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) // oneDNN wants k >= 1; C = beta·C
    return sgemmFor(GemmKind::kOneDnn)(ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                       beta, c, ldc);
  return run(dt::f32, 0, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

absl::Status onednnMatmulSgemmBias(bool ta, bool tb, int64_t m, int64_t n,
                                   int64_t k, const float *a, int64_t lda,
                                   const float *b, int64_t ldb,
                                   const float *bias, float *c, int64_t ldc) {
  return matmulBias(dt::f32, ta, tb, m, n, k, a, lda, b, ldb, bias, c, ldc);
}

absl::Status onednnMatmulBf16Bias(bool ta, bool tb, int64_t m, int64_t n,
                                  int64_t k, const uint16_t *a, int64_t lda,
                                  const uint16_t *b, int64_t ldb,
                                  const float *bias, float *c, int64_t ldc) {
  return matmulBias(dt::bf16, ta, tb, m, n, k, a, lda, b, ldb, bias, c, ldc);
}

absl::Status onednnBatchedMatmul(int64_t batch, bool ta, bool tb, int64_t m,
                                 int64_t n, int64_t k, float alpha,
                                 const float *a, const float *b, float *c,
                                 int threads) {
  if (batch == 0 || m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) {
    std::fill(c, c + batch * m * n, 0.f);
    return absl::OkStatus();
  }
  return run(dt::f32, batch, ta, tb, m, n, k, alpha, a, ta ? m : k, b,
             tb ? k : n, 0.f, c, n, threads);
}

bool nativeBf16Matmul() {
  static const bool yes = [] {
    // ISA values are bit sets: every level above avx512_core_bf16 (AMX)
    // contains its bits.
    const unsigned isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa()),
                   bf16 =
                       static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return yes;
}

absl::Status onednnMatmulBf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                              float alpha, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float beta,
                              float *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) // C = beta·C; the fp32 GEMM reads no operand
    return sgemmFor(GemmKind::kOneDnn)(ta, tb, m, n, k, alpha, nullptr, lda,
                                       nullptr, ldb, beta, c, ldc);
  return run(dt::bf16, 0, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

absl::Status onednnBatchedMatmulBf16(int64_t batch, bool ta, bool tb, int64_t m,
                                     int64_t n, int64_t k, float alpha,
                                     const uint16_t *a, const uint16_t *b,
                                     float *c, int threads) {
  if (batch == 0 || m == 0 || n == 0)
    return absl::OkStatus();
  if (k == 0) {
    std::fill(c, c + batch * m * n, 0.f);
    return absl::OkStatus();
  }
  return run(dt::bf16, batch, ta, tb, m, n, k, alpha, a, ta ? m : k, b,
             tb ? k : n, 0.f, c, n, threads);
}

} // namespace galaxy::rt::cpu
