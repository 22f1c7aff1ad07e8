// Runs the programs of one rank's plan: owns the arena, the parameters and the
// optimizer state, binds buffers to tensors once, and calls the Backend.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {

// Program outputs by binding name ("loss", "logits"), copied to the host.
using Outputs = std::map<std::string, std::vector<float>>;

class Executor {
public:
  // Checks the plan (format version, buffer table, programs) and allocates.
  static absl::StatusOr<std::unique_ptr<Executor>> create(plan::Plan plan, Backend &backend);

  const plan::Plan &plan() const { return plan_; }

  // Seeded initialisation from each parameter's initializer; an element's value
  // depends only on (seed, parameter name, global index), so every rank and
  // every sharding of a parameter draws the same numbers.
  void initParams(uint64_t seed);
  // Reads every parameter's slice from a safetensors file (by HF name).
  absl::Status loadParams(const io::SafetensorsFile &file);
  // Writes every parameter (this rank's slices; serial: the whole model).
  absl::Status saveParams(const std::string &path) const;

  // Runs one program on a batch. `ctx.step` drives dropout and AdamW.
  absl::StatusOr<Outputs> run(const std::string &program, const io::Batch &batch,
                              const KernelContext &ctx);

  bool hasProgram(const std::string &name) const { return programs_.count(name) > 0; }

private:
  Executor(plan::Plan plan, Backend &backend) : plan_(std::move(plan)), backend_(backend) {}
  absl::Status bind();

  struct BoundInstr {
    const plan::Instr *instr;
    std::vector<Tensor> in, out;
  };
  struct BoundProgram {
    const plan::Program *program;
    std::vector<BoundInstr> instrs;
  };

  plan::Plan plan_;
  Backend &backend_;
  std::unique_ptr<float[], void (*)(void *)> arena_{nullptr, nullptr};
  std::vector<std::vector<float>> params_;                // per plan param: its slice
  std::map<int32_t, std::vector<float>> state_;           // OPT_STATE buffer id -> data
  std::map<int32_t, std::vector<int32_t>> inputsI32_;     // INPUT buffer id -> data
  std::map<int32_t, std::vector<float>> inputsF32_;
  std::vector<Tensor> tensors_;                           // per buffer id
  std::map<std::string, BoundProgram> programs_;
};

} // namespace galaxy::rt
