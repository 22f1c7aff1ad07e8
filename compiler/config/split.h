// Default split lists: what a rank gets when the config gives no list.
#pragma once

#include <cstdint>
#include <vector>

namespace galaxy::config {

// Splits `total` into `parts` entries that differ by at most one, the
// remainder going to the first ranks: evenSplit(10, 3) == {4, 3, 3}.
// parts <= 0 gives an empty list; total < parts leaves trailing zeros.
std::vector<int64_t> evenSplit(int64_t total, int64_t parts);

} // namespace galaxy::config
