#include "runtime/cpu/cpu_backend.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/cpu/bf16_copies.h"
#include "runtime/cpu/bf16_kernels.h"
#include "runtime/cpu/denormals.h"
#include "runtime/cpu/kernel_profile.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/library_env.h"

namespace galaxy::rt::cpu {
namespace {

const std::unordered_map<std::string_view, KernelFn> &kernelTable() {
  static const auto *table = new std::unordered_map<std::string_view, KernelFn>{
      {"fill", fillKernel},
      {"iota", iotaKernel},
      {"embedding", embeddingKernel},
      {"embedding_grad", embeddingGradKernel},
      {"add", addKernel},
      {"mul", mulKernel},
      {"scale", scaleKernel},
      {"linear", linearKernel},
      {"linear_weight_grad", linearWeightGradKernel},
      {"bias_grad", biasGradKernel},
      {"matmul", matmulKernel},
      {"split_heads", splitHeadsKernel},
      {"merge_heads", mergeHeadsKernel},
      {"merge_heads_bias_grad", mergeHeadsBiasGradKernel},
      {"repeat_kv", repeatKvKernel},
      {"repeat_kv_grad", repeatKvGradKernel},
      {"rope", ropeKernel},
      {"masked_softmax", maskedSoftmaxKernel},
      {"softmax_grad", softmaxGradKernel},
      {"layer_norm", layerNormKernel},
      {"layer_norm_grad", layerNormGradKernel},
      {"rms_norm", rmsNormKernel},
      {"rms_norm_grad", rmsNormGradKernel},
      {"gelu", geluKernel},
      {"gelu_grad", geluGradKernel},
      {"gelu_grad_bias_grad", geluGradBiasGradKernel},
      {"relu", reluKernel},
      {"relu_grad", reluGradKernel},
      {"silu", siluKernel},
      {"silu_grad", siluGradKernel},
      {"tanh", tanhKernel},
      {"tanh_grad", tanhGradKernel},
      {"dropout", dropoutKernel},
      {"dropout_add", dropoutAddKernel},
      {"dropout_bias_grad", dropoutBiasGradKernel},
      {"take_token", takeTokenKernel},
      {"take_token_grad", takeTokenGradKernel},
      {"cross_entropy", crossEntropyKernel},
      {"cross_entropy_grad", crossEntropyGradKernel},
      {"sgd_update", sgdUpdateKernel},
      {"adamw_update", adamwUpdateKernel},
  };
  return *table;
}

// A kernel that wrote a parameter (fused SGD's output, an optimizer update's
// in-place input 0) refreshes its bf16 copy (KernelContext::weightsVersion).
void refreshWrittenBf16Weights(const KernelCall &c) {
  if (c.ctx.matmulDType != plan::MATMUL_BF16)
    return;
  // Native bf16 fused SGD rounds the copy as it updates each tile
  // (linearWeightGradKernel, bf16WeightGrad).
  if (c.env.nativeBf16 && c.instr.kernel() == "linear_weight_grad")
    return;
  auto refresh = [&](const Tensor &t) {
    refreshBf16Weights(t.f32(), t.numel(), c.ctx.weightsVersion, c.env.threads);
  };
  for (const Tensor &t : c.out)
    if (t.param)
      refresh(t);
  if (!c.in.empty() && c.in[0].param && c.instr.kernel().ends_with("_update"))
    refresh(c.in[0]);
}

class CpuBackend final : public Backend {
public:
  CpuBackend(CpuEnv env, std::string description)
      : env_(env), description_(std::move(description)) {
    if (KernelProfile::enabledByEnv())
      profile_ = std::make_unique<KernelProfile>();
  }
  ~CpuBackend() override {
    if (profile_ && !profile_->empty())
      std::fprintf(stderr, "%s", profile_->table().c_str());
  }

  std::string name() const override { return "cpu"; }
  std::string gemmDescription() const override { return description_; }
  bool implements(std::string_view kernel) const override {
    return kernelTable().count(kernel) != 0;
  }

  absl::Status run(const plan::Instr &instr, const std::vector<Tensor> &in,
                   const std::vector<Tensor> &out,
                   const KernelContext &ctx) override {
    const auto &table = kernelTable();
    auto it = table.find(instr.kernel());
    if (it == table.end())
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown kernel '%s' (block '%s'): the CPU backend "
                          "runs the kernels of "
                          "docs/kernels.md only",
                          instr.kernel(), instr.block()));
    setGemmThreads(
        env_.threads); // another backend in this process may have changed it
    // Any thread may call (pipeline drivers, tests); each gets the setting.
    setDenormalsOnThisThread(env_.flushDenormals);
    const KernelCall call{instr, in,   out,
                          ctx,   env_, schema::findKernel(instr.kernel())};
    if (!profile_) {
      absl::Status st = it->second(call);
      refreshWrittenBf16Weights(call);
      return st;
    }
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status st = it->second(call);
    std::string shapes;
    if (profileShapes_)
      for (const Tensor &t : in)
        absl::StrAppend(&shapes, shapes.empty() ? "" : ",",
                        absl::StrJoin(t.shape, "x"));
    profile_->record(
        instr,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count(),
        double(instr.flops()), shapes);
    refreshWrittenBf16Weights(call);
    return st;
  }

private:
  CpuEnv env_;
  std::string description_;
  std::unique_ptr<KernelProfile> profile_; // null unless GALAXY_PROFILE is set
  const bool profileShapes_ = KernelProfile::byShapeByEnv();
};

} // namespace

std::unique_ptr<Backend> makeCpuBackend(const CpuBackendOptions &options) {
  CpuEnv env;
  std::string note;
  if (options.threads > 0) {
    env.threads = options.threads;
  } else {
    ThreadChoice t = threadsFromEnv();
    env.threads = t.threads;
    if (!t.note.empty())
      note = " (" + t.note + ")";
  }
  GemmChoice gemm = chooseGemm(env.threads, options.gemm);
  env.gemm = gemm.kind;
  env.sgemm = sgemmFor(gemm.kind);
  env.flushDenormals = flushDenormalsWanted();
  setDenormalsOnThisThread(env.flushDenormals);
  // bf16 plans: native unless GALAXY_BF16=emulate or the GEMM is forced to a
  // library without bf16 (OpenBLAS, naive), which keeps the emulation testable.
  const char *bf16 = std::getenv("GALAXY_BF16");
  env.nativeBf16 = nativeBf16Matmul() && bf16KernelsAvailable() &&
                   (bf16 == nullptr || std::string_view(bf16) != "emulate") &&
                   env.gemm != GemmKind::kOpenBlas &&
                   env.gemm != GemmKind::kNaive;
  return std::make_unique<CpuBackend>(
      env, gemm.description + note + denormalsNote(env.flushDenormals) +
               openmpWaitNote() +
               (env.nativeBf16 ? "; bf16 plans: oneDNN bf16 matmul"
                               : "; bf16 plans: emulated (fp32 GEMM over "
                                 "rounded copies)"));
}

} // namespace galaxy::rt::cpu

namespace galaxy::rt {

std::unique_ptr<Backend> makeCpuBackend() {
  return cpu::makeCpuBackend(cpu::CpuBackendOptions{});
}

} // namespace galaxy::rt
