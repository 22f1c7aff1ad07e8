// The device-independent kernel interface. A plan instruction names a kernel
// (docs/kernels.md); a Backend runs it over tensors bound to the instruction's
// buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {

// A non-owning view of one buffer. Data is contiguous, row-major.
struct Tensor {
  void *data = nullptr;
  plan::DType dtype = plan::F32;
  std::vector<int64_t> shape;
  // A parameter (the executor binds it so): unchanged while
  // KernelContext::paramsVersion stays the same, so a kernel may keep a
  // repacked copy of it.
  bool param = false;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  float *f32() const { return static_cast<float *>(data); }
  int32_t *i32() const { return static_cast<int32_t *>(data); }
};

// Per-call state the kernels may read: dropout addressing, the optimizer step
// and the matmul precision.
struct KernelContext {
  uint64_t seed = 0; // run seed (galaxy-run --seed)
  int64_t step =
      0; // 1-based optimizer step; dropout key and Adam bias correction
  bool training = true; // false: dropout is the identity
  // Pipeline microbatches: a microbatch is rows [batchOffset, batchOffset + n)
  // of a global batch of globalBatch rows; dropout with a "batch_dim" attribute
  // addresses its mask in the global batch, so microbatching draws the serial
  // mask. globalBatch 0: the program sees the whole batch.
  int64_t batchOffset = 0;
  int64_t globalBatch = 0;
  // Operand precision of linear, linear_weight_grad and matmul
  // (docs/kernels.md "Matmul precision"). The Executor sets it from the plan's
  // matmul_dtype on every run, so its callers (SPMD runs, the pipeline driver)
  // need not.
  plan::MatmulDType matmulDType = plan::MATMUL_F32;
  // Nonzero in inference programs (prefill, decode): the parameters'
  // version, a new one whenever anything may have written them (the
  // Executor's count). Kernels key repacked parameters by it; 0: repack none.
  uint64_t paramsVersion = 0;
  // bf16 plans: the version under which a backend may keep bfloat16 copies of
  // the parameters, in every program (training ones too). The Executor renews
  // it only when the host writes them (init, load); a backend whose kernel
  // writes a parameter (an optimizer update, fused SGD) refreshes or drops its
  // copy itself. 0: keep no copies.
  uint64_t weightsVersion = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // A human line about the GEMM path in use, printed at start-up.
  virtual std::string gemmDescription() const = 0;
  // Whether run() implements `kernel` (a name of the kernel schema,
  // runtime/plan/kernel_schema.h). The executor refuses a plan naming a
  // backend-run kernel for which this is false before any step runs.
  virtual bool implements(std::string_view kernel) const = 0;
  // Runs instr.kernel. `in`/`out` follow instr.inputs / instr.outputs.
  // Returns InvalidArgument naming the kernel on unknown kernels or bad shapes.
  virtual absl::Status run(const plan::Instr &instr,
                           const std::vector<Tensor> &in,
                           const std::vector<Tensor> &out,
                           const KernelContext &ctx) = 0;
};

// CPU backend; measures the available GEMM libraries once and keeps the fastest
// (override with GALAXY_GEMM=onednn|openblas|naive).
std::unique_ptr<Backend> makeCpuBackend();

} // namespace galaxy::rt
