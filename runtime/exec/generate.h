// Text generation with a causal-LM plan: prompts in, new token ids out
// (greedy or seeded sampling: sampling.h).
// This version recomputes the whole prefix with eval_step at every new token
// (no KV cache): slow, but it runs on any SPMD plan of any parallel mode, and
// it is the baseline the cached prefill/decode programs must equal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/sampling.h"

namespace galaxy::rt {

class Executor;
class StepRunner;

struct GenerateOptions {
  int64_t batchSize = 0; // the plan's rows per eval_step
  int64_t seqLen = 0;    // the plan's positions: prompt + new tokens fit in it
  int64_t padId = 0;     // fills the positions after a row's tokens
  int64_t vocabSize = 0;
  int64_t maxNewTokens = 0;
  int64_t eosId = -1;       // a row stops after emitting it (< 0: never)
  uint64_t seed = 42;       // the kernels' context (eval mode: no dropout)
  SamplingOptions sampling; // how each next token is chosen (nextToken)
};

// PROMPTS.jsonl: one {"input_ids": [...]} a line (blank lines skipped), each
// id in [0, vocabSize), at least one per row.
absl::StatusOr<std::vector<std::vector<int32_t>>>
readPrompts(const std::string &path, int64_t vocabSize);

// Refuses a prompt that leaves no room for maxNewTokens in seqLen positions.
absl::Status
checkPromptLengths(const std::vector<std::vector<int32_t>> &prompts,
                   const GenerateOptions &o);

// Decoding, batchSize prompts at a time (a last partial group repeats its
// first prompt in the spare rows): each step runs eval_step on the
// right-padded rows and appends nextToken of each row's last position.
// Collective when the runner's plan is: every rank gets the same gathered
// logits and so takes the same decisions. Returns the new ids per prompt (up
// to and including eosId).
absl::StatusOr<std::vector<std::vector<int32_t>>>
generateByRecompute(StepRunner &runner,
                    const std::vector<std::vector<int32_t>> &prompts,
                    const GenerateOptions &o);

// Whether the executor's plan holds the KV-cache programs (prefill, decode).
bool hasCachePrograms(const Executor &ex);

// Where generateWithCache spent its time, per group of batchSize prompts:
// prefill (with the caches' hand-over to decode) and the decode steps after
// it (one token per row each).
struct GenerateStats {
  struct Group {
    double prefillSeconds = 0, decodeSeconds = 0;
    int64_t decodeSteps = 0;
  };
  std::vector<Group> groups;
};

// The same decoding with the plan's KV-cache programs: prefill runs
// each group's right-padded prompts once (the caches' slots at and after a
// row's length are zeroed: decode adds each new key and value into its
// slot), then decode runs one token per row per step at slot length + t.
// The caches never leave the ranks' backends: each rank keeps its part (the
// partitioner's layout of the cache ports, e.g. its KV heads under TP),
// carried from prefill's outputs to decode's inputs and from each decode
// step's outputs to the next step's inputs (Executor::carry). Collective in a
// partitioned plan (every rank gets the gathered logits). Equal to
// generateByRecompute (tests/generate). `stats`, if given, gets the timings.
absl::StatusOr<std::vector<std::vector<int32_t>>>
generateWithCache(Executor &ex,
                  const std::vector<std::vector<int32_t>> &prompts,
                  const GenerateOptions &o, GenerateStats *stats = nullptr);

// OUT.jsonl: {"input_ids": [...], "generated_ids": [...]} per prompt, in
// order, written atomically; with `texts` (one per prompt: the decoded text,
// galaxy-run --tokenizer) also "text", exactly (JSON-escaped; bytes that are
// not UTF-8 become U+FFFD).
absl::Status
writeGenerations(const std::string &path,
                 const std::vector<std::vector<int32_t>> &prompts,
                 const std::vector<std::vector<int32_t>> &generated,
                 const std::vector<std::string> &texts = {});

} // namespace galaxy::rt
