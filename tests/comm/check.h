// Assertions usable inside a forked rank: they return a Status describing
// the first mismatch instead of touching gtest state in the child.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace galaxy::comm::testing {

template <typename T>
absl::Status expectEqual(const std::vector<T> &got, const std::vector<T> &want,
                         const char *what) {
  if (got.size() != want.size())
    return absl::InternalError(absl::StrFormat("%s: %d elements, want %d", what,
                                               got.size(), want.size()));
  for (size_t i = 0; i < got.size(); ++i)
    if (std::abs(double(got[i]) - double(want[i])) > 1e-4)
      return absl::InternalError(absl::StrFormat(
          "%s[%d] = %g, want %g", what, i, double(got[i]), double(want[i])));
  return absl::OkStatus();
}

} // namespace galaxy::comm::testing

// Propagates a failed Status out of a rank function.
#define RETURN_IF_ERROR(expr)                                                  \
  do {                                                                         \
    absl::Status _s = (expr);                                                  \
    if (!_s.ok())                                                              \
      return _s;                                                               \
  } while (0)
