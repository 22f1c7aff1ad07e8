// What every CPU kernel receives, plus the cheap checks and attribute readers
// they share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/cpu/gemm.h"
#include "runtime/plan/kernel_schema.h"

#define GALAXY_CPU_CONCAT_INNER(a, b) a##b
#define GALAXY_CPU_CONCAT(a, b) GALAXY_CPU_CONCAT_INNER(a, b)
// lhs = value of a StatusOr expression, or return its error.
#define GALAXY_CPU_ASSIGN_OR_RETURN(lhs, expr)                                 \
  auto GALAXY_CPU_CONCAT(_statusor_, __LINE__) = (expr);                       \
  if (!GALAXY_CPU_CONCAT(_statusor_, __LINE__).ok())                           \
    return GALAXY_CPU_CONCAT(_statusor_, __LINE__).status();                   \
  lhs = *std::move(GALAXY_CPU_CONCAT(_statusor_, __LINE__))
#define GALAXY_CPU_RETURN_IF_ERROR(expr)                                       \
  do {                                                                         \
    absl::Status _st = (expr);                                                 \
    if (!_st.ok())                                                             \
      return _st;                                                              \
  } while (0)

namespace galaxy::rt::cpu {

// Process-independent settings of one backend instance.
struct CpuEnv {
  int threads = 1;
  GemmKind gemm = GemmKind::kNaive;
  SgemmFn sgemm = nullptr;
  bool flushDenormals = true; // FTZ/DAZ on kernel threads (denormals.h)
  // bf16 plans multiply bfloat16 operands in oneDNN's bf16 matmul; false: the
  // fp32 GEMM over copies rounded in fp32 containers (the emulation).
  bool nativeBf16 = false;
};

struct KernelCall {
  const plan::Instr &instr;
  const std::vector<Tensor> &in;
  const std::vector<Tensor> &out;
  const KernelContext &ctx;
  const CpuEnv &env;
  // The kernel's schema entry, looked up once per call by the backend (the
  // attribute readers below consult it); null: they look it up themselves.
  const schema::KernelSchema *schema = nullptr;
};

using KernelFn = absl::Status (*)(const KernelCall &);

std::string shapeString(const std::vector<int64_t> &shape);

// InvalidArgument "kernel 'k' (block 'b'): <why>; inputs [..] ..., outputs [..]
// ...".
absl::Status kernelError(const KernelCall &c, std::string_view why);

// Input count in [min_in, max_in] and exactly n_out outputs.
absl::Status checkArity(const KernelCall &c, size_t min_in, size_t max_in,
                        size_t n_out);

// Tensor `what` must have dtype `want` (checked because a wrong dtype reads
// garbage).
absl::Status checkDtype(const KernelCall &c, const Tensor &t, plan::DType want,
                        std::string_view what);

// Every input and output is f32.
absl::Status checkAllF32(const KernelCall &c);

// Attribute readers. What a kernel may read, its type and its default come
// from the kernel schema (runtime/plan/kernel_schema.h, generated from the
// ODS): absent and defaulted -> the schema's default (ints: empty); absent and
// required -> an error naming the key; a key the schema does not declare for
// the kernel, or read as another type, is an error.
absl::StatusOr<double> floatAttr(const KernelCall &c, const std::string &key);
absl::StatusOr<int64_t> intAttr(const KernelCall &c, const std::string &key);
absl::StatusOr<std::string> stringAttr(const KernelCall &c,
                                       const std::string &key);
absl::StatusOr<std::vector<int64_t>> intsAttr(const KernelCall &c,
                                              const std::string &key);

inline int64_t lastDim(const Tensor &t) {
  return t.shape.empty() ? 1 : t.shape.back();
}
// Product of all dims but the last ("rows" in docs/kernels.md).
inline int64_t rowCount(const Tensor &t) {
  int64_t n = 1;
  for (size_t i = 0; i + 1 < t.shape.size(); ++i)
    n *= t.shape[i];
  return n;
}

} // namespace galaxy::rt::cpu
