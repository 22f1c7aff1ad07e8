// Small text outputs (JSON reports, adapter_config.json) written atomically.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace galaxy::io {

// Writes `text` to `path` atomically: a temporary in the same directory
// (removed on failure and on SIGINT / SIGTERM, see temp_file.h), then renamed
// over `path`.
absl::Status writeTextAtomically(const std::string &path,
                                 const std::string &text);

} // namespace galaxy::io
