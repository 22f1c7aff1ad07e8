// galaxy-run --save-merged: every LoRA pair folded into its base weight.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace galaxy::rt {

// Reads the weights `savedPath` (a galaxy-run save, Hugging Face names), folds
// each P.lora_B.weight·P.lora_A.weight·(lora_alpha/lora_dim) into P.weight (the
// transpose when fan_in_fan_out: P.weight is [in, out]) and writes every other
// tensor, without the lora_A/lora_B factors, to `outPath` atomically.
// `configJson` is the plan's resolved config (plan.config_json).
absl::Status writeMergedLora(const std::string &savedPath,
                             const std::string &configJson,
                             const std::string &outPath);

} // namespace galaxy::rt
