// LLaMA (Hugging Face's LlamaForCausalLM / LlamaForSequenceClassification)
// as the model registry sees it.
#pragma once

#include "models/registry.h"

namespace galaxy::models {
const ModelSpec &llamaSpec();
} // namespace galaxy::models
