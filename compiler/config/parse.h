// Reading a JSON config: key names, JSON types and enum spellings. Values are
// checked later by resolveConfig()/validate() (validate.h), once the parallel
// mode and world size chosen on the command line are known.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

// Parses `jsonText`; `sourceName` (a path or a label) prefixes every message.
// Unknown keys add a warning each to GalaxyConfig::warnings. Errors
// (InvalidArgument) name the key, the value and the expected type.
absl::StatusOr<GalaxyConfig> parseConfig(const std::string &jsonText,
                                         const std::string &sourceName);

// Reads and parses the file at `path` (NotFound when it cannot be read).
absl::StatusOr<GalaxyConfig> loadConfig(const std::string &path);

} // namespace galaxy::config
