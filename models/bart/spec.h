// BART (Hugging Face's BartForConditionalGeneration /
// BartForSequenceClassification) as the model registry sees it.
#pragma once

#include "models/registry.h"

namespace galaxy::models {
const ModelSpec &bartSpec();
// The decoder's sequence length: target_pad_size for seq2seq (0: pad_size);
// pad_size for classification, whose decoder reads the shifted input_ids.
int64_t bartTargetLength(const config::GalaxyConfig &c);
// The backbone's taps a side network reads, in the order side-tuning's
// eval_step returns them after (loss, logits) and side-only's @forward takes
// them as inputs: the encoder's embedding output and every encoder layer's
// output ([B, S, H]), then the decoder's ([B, T, H]). Names "tap.encoder.
// embeddings", "tap.encoder.layer.{i}", "tap.decoder.embeddings",
// "tap.decoder.layer.{i}" (the taps file holds them as "taps.*").
std::vector<ModelInput> bartTaps(const config::GalaxyConfig &c);
} // namespace galaxy::models
