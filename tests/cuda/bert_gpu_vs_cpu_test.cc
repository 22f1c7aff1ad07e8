// A serial tiny-BERT training plan (compiled by galaxyc) run by the executor
// on the CUDA backend and on the CPU backend: per-step losses and the final
// eval logits must agree within 1e-4 (fp32, dropout on: both draw the same
// addressed Philox masks).
//
// Needs an executor that keeps buffers in device memory when its backend has
// DeviceMemory (runtime/cuda/device_memory.h). Until runtime/exec declares
// that by defining GALAXY_EXECUTOR_DEVICE_MEMORY (PUBLIC, on galaxy_runtime),
// the test is compiled but reports itself SKIPPED with that reason.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

#include "runtime/exec/executor.h"
#include "tests/cuda/gpu_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kBatch = 4, kSeq = 16, kVocab = 300, kClasses = 10, kSteps = 3;

// Tiny BERT (2 layers, hidden 64), AdamW, dropout 0.1: every kernel kind of a
// training step runs.
constexpr const char *kConfig = R"({
  "model_type": "bert", "vocab_size": 300, "hidden_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
  "max_position_embeddings": 64, "pad_size": 16, "batch_size": 4,
  "num_classes": 10, "hidden_dropout_prob": 0.1,
  "attention_probs_dropout_prob": 0.1, "optimizer": "adamw",
  "learning_rate": 0.001, "parallel_mode": "serial", "seed": 42
})";

io::Batch makeBatch(int step) {
  std::mt19937 rng(100 + step);
  io::Batch b;
  b.size = kBatch;
  b.seqLen = kSeq;
  for (int r = 0; r < kBatch; ++r) {
    const int len = 4 + (r * 5 + step) % (kSeq - 3);
    for (int t = 0; t < kSeq; ++t) {
      b.ints("input_ids").push_back(t < len ? 2 + rng() % (kVocab - 2) : 0);
      b.floats("attention_mask").push_back(t < len ? 1.f : 0.f);
      b.ints("token_type_ids").push_back(t < len / 2 ? 0 : 1);
    }
    b.ints("labels").push_back(rng() % kClasses);
  }
  return b;
}

// Compiles kConfig with galaxyc into a serial plan.
absl::StatusOr<plan::Plan> compileTinyBert(const std::string &galaxyc) {
  const fs::path dir = fs::temp_directory_path() /
                       ("galaxy-gpu-bert." + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tiny.json") << kConfig;
  const std::string cmd = galaxyc + " " + (dir / "tiny.json").string() +
                          " --mode serial --emit none -o " + dir.string() +
                          " > " + (dir / "galaxyc.log").string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return absl::InternalError("galaxyc failed: see " +
                               (dir / "galaxyc.log").string());
  plan::Plan p;
  std::ifstream in(dir / "rank0.plan.pb", std::ios::binary);
  if (!p.ParseFromIstream(&in))
    return absl::InternalError("cannot read " +
                               (dir / "rank0.plan.pb").string());
  fs::remove_all(dir);
  return p;
}

struct Trace {
  std::vector<float> losses, logits;
};

absl::StatusOr<Trace> train(const plan::Plan &p, Backend &backend) {
  absl::StatusOr<std::unique_ptr<Executor>> ex = Executor::create(p, backend);
  if (!ex.ok())
    return ex.status();
  (*ex)->initParams(1234);
  Trace t;
  for (int step = 1; step <= kSteps; ++step) {
    absl::StatusOr<Outputs> out =
        (*ex)->run("train_step", makeBatch(step), {.seed = 7, .step = step});
    if (!out.ok())
      return out.status();
    t.losses.push_back(out->at("loss").at(0));
  }
  if ((*ex)->hasProgram("eval_step")) {
    absl::StatusOr<Outputs> out =
        (*ex)->run("eval_step", makeBatch(99),
                   {.seed = 7, .step = kSteps, .training = false});
    if (!out.ok())
      return out.status();
    t.logits = out->at("logits");
  }
  return t;
}

TEST(BertOnGpu, SerialTrainingMatchesCpu) {
  GALAXY_SKIP_WITHOUT_GPU();
#ifndef GALAXY_EXECUTOR_DEVICE_MEMORY
  GTEST_SKIP() << "the executor (runtime/exec) does not place buffers in "
                  "device memory yet: it must allocate the arena, parameters, "
                  "optimizer state and inputs through the backend's "
                  "DeviceMemory and define GALAXY_EXECUTOR_DEVICE_MEMORY "
                  "(runtime/cuda/README.md)";
#endif
#ifndef GALAXYC_PATH
  GTEST_SKIP() << "no galaxyc target in this build (tools/ left out?)";
#else
  if (access(GALAXYC_PATH, X_OK) != 0)
    GTEST_SKIP() << GALAXYC_PATH << " is not built: build the galaxyc target";
  absl::StatusOr<plan::Plan> p = compileTinyBert(GALAXYC_PATH);
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<Trace> cpu = train(*p, cpuBackend());
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  absl::StatusOr<Trace> gpu = train(*p, gpuBackend());
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  ASSERT_EQ(gpu->losses.size(), cpu->losses.size());
  for (size_t s = 0; s < cpu->losses.size(); ++s)
    EXPECT_NEAR(gpu->losses[s], cpu->losses[s],
                1e-4 * std::max(1.f, std::fabs(cpu->losses[s])))
        << "loss of step " << s + 1;
  ASSERT_EQ(gpu->logits.size(), cpu->logits.size());
  for (size_t k = 0; k < cpu->logits.size(); ++k)
    EXPECT_NEAR(gpu->logits[k], cpu->logits[k], 1e-4) << "eval logit " << k;
#endif
}

} // namespace
} // namespace galaxy::rt::testing
