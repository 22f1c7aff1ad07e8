// The choice of each generated token: greedy (argmax) or seeded sampling with
// temperature, top-k and top-p (Hugging Face's generate semantics). One
// function serves both generation paths (KV cache and recompute), so every
// mode takes the same decisions from the same logits.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace galaxy::rt {

struct SamplingOptions {
  double temperature = 0; // 0: greedy (top-k and top-p are then ignored)
  int64_t topK = 0;       // keep the K most likely tokens (0: all)
  double topP = 1;        // nucleus mass (1: all)
  uint64_t seed = 42;
};

// Refuses a temperature that is negative or not finite, top-k < 0 and top-p
// outside (0, 1].
absl::Status checkSamplingOptions(const SamplingOptions &o);

// The next token of prompt `promptIndex` (its index in the prompts file) at
// new-token `step`, from that row's last-position logits [V]. Greedy: the
// first index of the largest logit. Sampling: softmax(logits / temperature)
// restricted to the top-k tokens (ties with the k-th kept), then to the
// smallest set of most likely ones whose mass reaches top-p (at least one),
// renormalised; the uniform draw is Philox4x32-10 at counter (promptIndex,
// step) under key `seed`, so it does not depend on the rank, the batch
// grouping or the generation path.
int32_t nextToken(const float *logits, int64_t V, const SamplingOptions &o,
                  int64_t promptIndex, int64_t step);

} // namespace galaxy::rt
