// The config as JSON: every key with its (resolved) value, for provenance
// next to a compiled plan. parseConfig(toJson(c)) reads it back unchanged.
#pragma once

#include <string>

#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

// Keys in groups (model, training, PEFT, parallel), 2-space indented.
// world_size 0 (not known) is written as null. `source` and `warnings` are
// not keys and are left out.
std::string toJson(const GalaxyConfig &c);

} // namespace galaxy::config
