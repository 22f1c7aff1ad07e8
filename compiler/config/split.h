// Default split lists: what a rank gets when the config gives no list.
#pragma once

#include <cstdint>
#include <vector>

namespace galaxy::config {

// Splits `total` into `parts` entries that differ by at most one, the
// remainder going to the first ranks: evenSplit(10, 3) == {4, 3, 3}.
// parts <= 0 gives an empty list; total < parts leaves trailing zeros.
std::vector<int64_t> evenSplit(int64_t total, int64_t parts);

// `extent` split in the proportion of `weights`, each boundary rounded half
// up: proportionalSplit({7, 5}, 10) == {6, 4}; exact when the weights sum to
// `extent`. An encoder-decoder's target positions follow seq_scatter_list
// this way (header-only: the partition pass uses it too).
inline std::vector<int64_t>
proportionalSplit(const std::vector<int64_t> &weights, int64_t extent) {
  int64_t total = 0;
  for (int64_t w : weights)
    total += w;
  std::vector<int64_t> out;
  if (total <= 0)
    return out;
  int64_t cum = 0, prev = 0;
  for (int64_t w : weights) {
    cum += w;
    // 128 bits: cum * extent may pass 2^63 for sizes the config allows.
    const int64_t bound = static_cast<int64_t>(
        (2 * static_cast<__int128>(cum) * extent + total) / (2 * total));
    out.push_back(bound - prev);
    prev = bound;
  }
  return out;
}

} // namespace galaxy::config
