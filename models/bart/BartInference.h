// BART's generation functions (issue 16, on issue 15's programs), built from
// the same config, layer code (bart_parts.h) and Hugging Face parameter names
// as @forward.
#pragma once

#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"

namespace galaxy {

// Adds to `module` (whose @forward holds the parameters), with S = pad_size
// source positions, T = target_pad_size decoder slots, N decoder heads:
//   @encode(input_ids [B, S] i32, attention_mask [B, S])
//     -> (cross.k.{i}, cross.v.{i} [B, N, S, D] per decoder layer)
//   the encoder once, and each decoder layer's cross-attention keys and
//   values of its output (computed once per prompt batch);
//   @decode(decoder_input_ids [B, 1] i32, position_rows [B, 1] i32,
//           decoder_attention_mask [B, T], slot [B, N, T, 1],
//           attention_mask [B, S], cache.k.{i}, cache.v.{i} [B, N, T, D],
//           cross.k.{i}, cross.v.{i})
//     -> (logits [B, V], cache.k.{i}, cache.v.{i})
//   one decoder token per row at decoder slot t: position_rows = t + 2 (the
//   row of embed_positions), slot one-hot at t (the new key and value are
//   added there: the caller starts from zero caches), the self-attention
//   mask 1 at slots 0..t, the cross-attention under the source mask.
// Values carry @forward's dimension names and blocks, so the partition pass
// lays these functions out in every SPMD mode, as LLaMA's.
void addBartInference(mlir::ModuleOp module, const config::GalaxyConfig &c);

// Whether addBartInference applies: a seq2seq BART, full or LoRA / adapter.
bool bartInferenceApplies(const config::GalaxyConfig &c);

} // namespace galaxy
