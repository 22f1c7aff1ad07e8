// BERT's declarations for the model registry (models/registry.h).
#pragma once

#include "models/registry.h"

namespace galaxy::models {
const ModelSpec &bertSpec();
} // namespace galaxy::models
