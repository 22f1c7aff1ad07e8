// Line-by-line reading with a bound on a line's length: a file with no
// newline (/dev/zero, a binary, a device) fails after kMaxLineBytes instead
// of growing one std::string until memory runs out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>

#include "absl/status/statusor.h"

namespace galaxy::io {

// Far above any line of text or pre-tokenized JSON a dataset or vocab holds.
constexpr size_t kMaxLineBytes = size_t{16} << 20;

// The next line of `in` (without its '\n') into `line`: true when there was
// one, false at the end of the input. Errors (InvalidArgument) name
// `file`:`lineNo` when the line is longer than `maxBytes`, and when reading
// fails (an I/O error, a directory).
absl::StatusOr<bool> readLine(std::istream &in, std::string &line,
                              const std::string &file, int64_t lineNo,
                              size_t maxBytes = kMaxLineBytes);

} // namespace galaxy::io
