// EXPECT_CONTAINS(text, needle): gtest-only substring check (no gmock, which
// is a separate Debian package).
#pragma once

#include <string>

#include "gtest/gtest.h"

namespace galaxy::config::testing {

inline ::testing::AssertionResult containsFormat(const char *, const char *,
                                                 const std::string &text,
                                                 const std::string &needle) {
  if (text.find(needle) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "message: " << text << "\n  lacks: " << needle;
}

} // namespace galaxy::config::testing

#define EXPECT_CONTAINS(text, needle)                                          \
  EXPECT_PRED_FORMAT2(::galaxy::config::testing::containsFormat,               \
                      std::string(text), std::string(needle))
