// BART (Hugging Face's BartForConditionalGeneration /
// BartForSequenceClassification) as the model registry sees it.
#pragma once

#include "models/registry.h"

namespace galaxy::models {
const ModelSpec &bartSpec();
// The decoder's sequence length: target_pad_size for seq2seq (0: pad_size);
// pad_size for classification, whose decoder reads the shifted input_ids.
int64_t bartTargetLength(const config::GalaxyConfig &c);
} // namespace galaxy::models
