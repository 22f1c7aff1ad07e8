// Helpers the validation tests share.
#pragma once

#include <string>

#include "compiler/config/validate.h"
#include "gtest/gtest.h"

namespace galaxy::config::testing {

// The message of a serial validation that must fail with InvalidArgument.
inline std::string serialError(const GalaxyConfig &c) {
  absl::Status s = validate(c, ParallelMode::kSerial, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

// A default config read from `source` (messages start with it).
inline GalaxyConfig named(const std::string &source = "m.json") {
  GalaxyConfig c;
  c.source = source;
  return c;
}

} // namespace galaxy::config::testing
