// LLaMA's inference functions with a KV cache (issue 15), built from the
// same config and the same Hugging Face parameter names as @forward.
#pragma once

#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"

namespace galaxy {

// Adds to `module` (whose @forward holds the parameters):
//   @prefill(input_ids [B, T] i32, attention_mask [B, T], last_index [B] i32)
//     -> (logits [B, V], cache.k.{i}, cache.v.{i} [B, NK, T, D] per layer)
//   @decode(input_ids [B, 1] i32, attention_mask [B, T], slot_q [B, N, T, 1],
//           slot_kv [B, NK, T, 1], cache.k.{i}, cache.v.{i})
//     -> (logits [B, V], cache.k.{i}, cache.v.{i})
// with T = cacheSlots(c). Rows are right-padded, so a row's token at slot p has
// position p. prefill's caches hold every slot's keys (rotated) and values;
// the caller zeroes the slots at and after each row's length. decode's
// slot_* are one-hot over T at the row's new slot: the new key and value are
// placed there (one_hot · k adds exact zeros elsewhere) and rotated there by
// rope over all T slots (a zero row stays zero), and the query is rotated the
// same way and taken back out. attention_mask is 1 at the slots a row's new
// token attends to (its tokens up to and including the new one). Values carry
// @forward's dimension names and blocks, so the partition pass lays the
// functions out in every SPMD mode (compiler/Pipeline.cpp adds them before
// the passes; they return replicated values: the caches are gathered).
void addLlamaInference(mlir::ModuleOp module, const config::GalaxyConfig &c);

// Whether addLlamaInference applies: a causal LLaMA. PEFT methods reach the
// functions through galaxy-peft, which rewrites them like @forward.
bool llamaInferenceApplies(const config::GalaxyConfig &c);

// The KV cache's positions T: max_seq, else pad_size (prompt plus new tokens
// must fit; prefill reads T positions).
int64_t cacheSlots(const config::GalaxyConfig &c);

} // namespace galaxy
