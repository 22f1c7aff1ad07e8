// Shared helpers for the CPU kernel tests: owned buffers, instruction builders,
// one backend.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/backend.h"
#include "runtime/cpu/cpu_backend.h"

namespace galaxy::rt::testing {

// A buffer that owns its data; t() views it as a Tensor.
struct Buf {
  plan::DType dtype = plan::F32;
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int32_t> i;
  bool param = false; // t() binds it as a parameter (Tensor::param)

  static Buf zeros(std::vector<int64_t> shape);
  static Buf values(std::vector<int64_t> shape, std::vector<float> v);
  static Buf ints(std::vector<int64_t> shape, std::vector<int32_t> v);
  static Buf random(std::vector<int64_t> shape, std::mt19937 &rng,
                    float lo = -1.f, float hi = 1.f);
  int64_t numel() const;
  Tensor t();
};

// Builds a plan::Instr: Op("matmul").i("transpose_a", 1).f("alpha", 0.5).
class Op {
public:
  explicit Op(const std::string &kernel);
  Op &i(const std::string &key, int64_t v);
  Op &f(const std::string &key, double v);
  Op &s(const std::string &key, const std::string &v);
  Op &ints(const std::string &key, const std::vector<int64_t> &v);
  const plan::Instr &instr() const { return instr_; }

private:
  plan::Instr instr_;
};

// The backend every test shares (measured GEMM choice, GALAXY_THREADS or all
// cores).
Backend &cpuBackend();
// A backend with a fixed GEMM and thread count (cached per combination).
Backend &cpuBackend(cpu::GemmKind gemm, int threads);

absl::Status run(const Op &op, std::vector<Buf *> in, std::vector<Buf *> out,
                 const KernelContext &ctx = {}, Backend *backend = nullptr);
// v's values rounded to bfloat16 (roundToBf16: the values bf16 kernels
// multiply), still as floats.
std::vector<float> roundedToBf16(const std::vector<float> &v);

// y[m,n] = x[m,k]·w[n,k]ᵀ in double (the references of the GEMM tests).
std::vector<double> xwt(const std::vector<float> &x,
                        const std::vector<float> &w, int64_t m, int64_t n,
                        int64_t k);

// v[rows, cols] transposed to [cols, rows].
std::vector<float> transposed(const std::vector<float> &v, int64_t rows,
                              int64_t cols);

// run() that fails the test on error and returns out[0]'s values.
std::vector<float> runOk(const Op &op, std::vector<Buf *> in,
                         std::vector<Buf *> out, const KernelContext &ctx = {},
                         Backend *backend = nullptr);

// Element-wise |got - want| <= atol + rtol·|want|, reporting the first few
// offenders.
void expectClose(const std::vector<float> &got, const std::vector<double> &want,
                 double rtol, double atol, const std::string &what);

} // namespace galaxy::rt::testing
