// How the config checks word their errors (internal to compiler/config): the
// source file prefixes every message, lists print as [a, b], strings quoted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

#define GALAXY_CONFIG_TRY(expr)                                                \
  do {                                                                         \
    absl::Status status_ = (expr);                                             \
    if (!status_.ok())                                                         \
      return status_;                                                          \
  } while (0)

inline absl::Status bad(const GalaxyConfig &c, const std::string &msg) {
  return absl::InvalidArgumentError(
      c.source.empty() ? msg : absl::StrCat(c.source, ": ", msg));
}

inline std::string listText(const std::vector<int64_t> &v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

inline std::string quoted(const std::string &s) {
  return absl::StrCat("\"", s, "\"");
}

} // namespace galaxy::config
