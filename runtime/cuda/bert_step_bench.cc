// cuda_bert_bench PLAN.pb [--steps N] [--warmup W] [--peak-tflops T]
//
// Times the train_step of a serial plan (galaxyc --mode serial) on GPU 0 with
// the CUDA backend and prints one JSON line: device, the plan's matmul dtype,
// step time (median after warm-up), tokens/s, the GEMM FLOPs of one step,
// achieved TFLOP/s and MFU against the GPU's dense peak for that dtype: fp32
// SMs × clock × 128 FMA, bf16 SMs × clock × the tensor cores' dense bf16
// FLOPs per SM per clock (--peak-tflops overrides the one in use). A
// benchmark that prints figures, not a test. Exit 3: the
// executor cannot run a device-memory backend yet
// (GALAXY_EXECUTOR_DEVICE_MEMORY undefined), so nothing was measured.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/executor.h"

namespace {

using namespace galaxy;

[[noreturn]] void die(const std::string &msg, int code = 1) {
  std::fprintf(stderr, "cuda_bert_bench: %s\n", msg.c_str());
  std::exit(code);
}

// FLOPs of one run of `program`: the compiler's count per instruction (the
// ops' cost rules; GEMMs are > 99% of BERT's).
double programFlops(const plan::Plan &p, const std::string &program) {
  double flops = 0;
  for (const plan::Program &prog : p.programs())
    if (prog.name() == program)
      for (const plan::Instr &in : prog.instrs())
        flops += double(in.flops());
  return flops;
}

// Dense bf16 tensor-core FLOPs per SM per clock (fp32 accumulation, no
// sparsity): Hopper 4096 (H100/H200 SXM: 132 SMs x 1.98 GHz = 1070 TFLOP/s;
// NVIDIA's datasheet quotes 989.4 at a 1.83 GHz tensor clock), A100 2048,
// other Ampere/Ada 1024; 0 = unknown (pass --peak-tflops).
double bf16FlopsPerSmClock(const cudaDeviceProp &prop) {
  if (prop.major == 9)
    return 4096;
  if (prop.major == 8)
    return prop.minor == 0 ? 2048 : 1024;
  return 0;
}

io::Batch syntheticBatch(const plan::ModelInfo &m, int step) {
  std::mt19937 rng(step);
  io::Batch b;
  b.size = m.batch_size();
  b.seqLen = m.seq_len();
  const int64_t vocab = std::max<int64_t>(m.vocab_size(), 3);
  for (int64_t i = 0; i < b.size * b.seqLen; ++i) {
    b.ints("input_ids").push_back(1 + rng() % (vocab - 1));
    b.floats("attention_mask").push_back(1.f);
    b.ints("token_type_ids").push_back(0);
  }
  for (int64_t i = 0; i < b.size; ++i)
    b.ints("labels").push_back(rng() % std::max<int64_t>(m.num_classes(), 1));
  return b;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    die("usage: cuda_bert_bench PLAN.pb [--steps N] [--warmup W] "
        "[--peak-tflops T]",
        2);
  int steps = 10, warmup = 3;
  double peakOverride = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (flag == "--warmup")
      warmup = std::atoi(argv[i + 1]);
    else if (flag == "--peak-tflops")
      peakOverride = std::atof(argv[i + 1]);
    else
      die("unknown flag " + flag, 2);
  }
#ifndef GALAXY_EXECUTOR_DEVICE_MEMORY
  die("the executor (runtime/exec) cannot run the CUDA backend yet: it must "
      "place buffers in the backend's DeviceMemory and define "
      "GALAXY_EXECUTOR_DEVICE_MEMORY; nothing measured",
      3);
#endif
  plan::Plan p;
  std::ifstream in(argv[1], std::ios::binary);
  if (!p.ParseFromIstream(&in))
    die(std::string("cannot read plan ") + argv[1]);

  absl::StatusOr<std::unique_ptr<rt::Backend>> backend =
      rt::cuda::createCudaBackend({});
  if (!backend.ok())
    die(std::string(backend.status().message()));
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  int clockKHz = 0;
  cudaDeviceGetAttribute(&clockKHz, cudaDevAttrClockRate, 0);
  // Dense fp32: 128 FP32 lanes per SM (Ampere..Hopper), one FMA = 2 FLOPs.
  const double smHz = prop.multiProcessorCount * (clockKHz * 1e3);
  const double peakFp32 = smHz * 128.0 * 2.0;
  const double peakBf16 = smHz * bf16FlopsPerSmClock(prop);
  const bool bf16 = p.matmul_dtype() == plan::MATMUL_BF16;
  const double peak = peakOverride > 0 ? peakOverride * 1e12
                      : bf16           ? peakBf16
                                       : peakFp32;

  absl::StatusOr<std::unique_ptr<rt::Executor>> ex =
      rt::Executor::create(p, **backend, nullptr, argv[1]);
  if (!ex.ok())
    die(std::string(ex.status().message()));
  (*ex)->initParams(1);
  std::vector<double> times;
  for (int s = 1; s <= warmup + steps; ++s) {
    io::Batch batch = syntheticBatch(p.model(), s);
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<rt::Outputs> out =
        (*ex)->run("train_step", batch, {.seed = 1, .step = s});
    if (!out.ok())
      die(std::string(out.status().message()));
    const double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (s > warmup)
      times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double median = times.empty() ? 0 : times[times.size() / 2];
  const double flops = programFlops(p, "train_step");
  const double tokens = double(p.model().batch_size()) * p.model().seq_len();
  std::printf("{\"device\": \"%s\", \"matmul_dtype\": \"%s\", "
              "\"batch\": %lld, \"seq\": %lld, "
              "\"step_s\": %.6f, \"tokens_per_s\": %.1f, \"gemm_tflop\": %.4f, "
              "\"tflops\": %.2f, \"peak_fp32_tflops\": %.1f, "
              "\"peak_bf16_tflops\": %.1f, \"mfu_peak_tflops\": %.1f, "
              "\"mfu\": %.4f, \"gemm\": \"%s\"}\n",
              prop.name, bf16 ? "bf16" : "fp32",
              static_cast<long long>(p.model().batch_size()),
              static_cast<long long>(p.model().seq_len()), median,
              median > 0 ? tokens / median : 0.0, flops / 1e12,
              median > 0 ? flops / median / 1e12 : 0.0, peakFp32 / 1e12,
              peakBf16 / 1e12, peak / 1e12,
              median > 0 && peak > 0 ? flops / median / peak : 0.0,
              (*backend)->gemmDescription().c_str());
  return 0;
}
