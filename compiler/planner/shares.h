// Splitting work over unequal ranks: the continuous optimum (water-filling:
// every rank finishes at the same time unless its memory caps its share),
// then whole units of each split list.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace galaxy::planner {

// Shares s_i in [lo, hi_i] summing to 1 that minimise max_i (a_i + b_i s_i)
// (b_i > 0); nullopt when the bounds admit no such shares.
std::optional<std::vector<double>> waterFill(const std::vector<double> &a,
                                             const std::vector<double> &b,
                                             double lo,
                                             const std::vector<double> &hi);

// `units` whole units in proportion to `shares`, at least one each (largest
// remainders get the leftovers), times `multiple`. Needs units >= ranks.
std::vector<int64_t> roundShares(const std::vector<double> &shares,
                                 int64_t units, int64_t multiple);

} // namespace galaxy::planner
