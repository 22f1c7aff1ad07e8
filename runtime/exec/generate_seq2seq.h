// Generation with a seq2seq (BART) plan: each prompt is a source row, the
// encoder runs once on it, and the decoder generates from
// decoder_start_token_id on, as Hugging Face's
// BartForConditionalGeneration.generate does (greedy or seeded sampling:
// sampling.h). Options and outputs as generate.h's; there o.seqLen is the
// decoder's slots (target_pad_size), which bound the new tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/generate.h"

namespace galaxy::rt {

struct Seq2SeqShape {
  int64_t sourceLen = 0;      // the plan's pad_size: a prompt fits in it
  int32_t decoderStartId = 2; // the decoder's first input
};

// Refuses a prompt longer than the source or more new tokens than slots.
absl::Status
checkSeq2SeqLengths(const std::vector<std::vector<int32_t>> &prompts,
                    const GenerateOptions &o, const Seq2SeqShape &shape);

// The baseline: eval_step on the right-padded sources and the decoder inputs
// so far ([start, generated...], the rest pad), taking each row's logits at
// its last decoder position. Runs on any SPMD plan of any mode.
absl::StatusOr<std::vector<std::vector<int32_t>>>
generateSeq2SeqByRecompute(StepRunner &runner,
                           const std::vector<std::vector<int32_t>> &prompts,
                           const GenerateOptions &o, const Seq2SeqShape &shape);

// Whether the executor's plan holds BART's programs (encode, decode).
bool hasSeq2SeqPrograms(const Executor &ex);

// The same with the plan's programs: encode once per group of batchSize
// prompts (the cross-attention keys and values), then decode one token per
// row per step at slot t, starting from zero self-attention caches, the
// caches going from one step's outputs to the next step's inputs. Equal to
// generateSeq2SeqByRecompute (tests/generate/bart_generate.py).
absl::StatusOr<std::vector<std::vector<int32_t>>>
generateSeq2SeqWithCache(Executor &ex,
                         const std::vector<std::vector<int32_t>> &prompts,
                         const GenerateOptions &o, const Seq2SeqShape &shape);

} // namespace galaxy::rt
