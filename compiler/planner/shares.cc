#include "compiler/planner/shares.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace galaxy::planner {

std::optional<std::vector<double>> waterFill(const std::vector<double> &a,
                                             const std::vector<double> &b,
                                             double lo,
                                             const std::vector<double> &hi) {
  const size_t n = a.size();
  double sumLo = lo * n, sumHi = 0;
  for (double h : hi)
    sumHi += std::max(h, lo);
  for (double h : hi)
    if (h < lo)
      return std::nullopt;
  if (sumLo > 1 + 1e-12 || sumHi < 1 - 1e-12)
    return std::nullopt;
  auto fill = [&](double t) {
    std::vector<double> s(n);
    for (size_t i = 0; i < n; ++i)
      s[i] = std::clamp((t - a[i]) / std::max(b[i], 1e-30), lo, hi[i]);
    return s;
  };
  auto sum = [](const std::vector<double> &s) {
    return std::accumulate(s.begin(), s.end(), 0.0);
  };
  double tLo = 1e300, tHi = -1e300;
  for (size_t i = 0; i < n; ++i) {
    tLo = std::min(tLo, a[i] + b[i] * lo);
    tHi = std::max(tHi, a[i] + b[i] * hi[i]);
  }
  for (int it = 0; it < 100; ++it) {
    const double mid = (tLo + tHi) / 2;
    (sum(fill(mid)) < 1 ? tLo : tHi) = mid;
  }
  std::vector<double> s = fill(tHi);
  const double total = sum(s);
  for (double &x : s) // the bisection's last rounding error
    x /= total;
  return s;
}

std::vector<int64_t> roundShares(const std::vector<double> &shares,
                                 int64_t units, int64_t multiple) {
  const size_t n = shares.size();
  double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  std::vector<int64_t> out(n);
  std::vector<double> want(n);
  int64_t used = 0;
  for (size_t i = 0; i < n; ++i) {
    want[i] = shares[i] / total * units;
    out[i] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(want[i])));
    used += out[i];
  }
  // Leftovers to the largest remainders; an excess (the minimum of one unit
  // each) back from the smallest.
  while (used != units) {
    size_t pick = n;
    for (size_t i = 0; i < n; ++i) {
      if (used > units && out[i] <= 1)
        continue;
      const double r = want[i] - out[i];
      if (pick == n || (used < units ? r > want[pick] - out[pick]
                                     : r < want[pick] - out[pick]))
        pick = i;
    }
    if (pick == n)
      break;
    out[pick] += used < units ? 1 : -1;
    used += used < units ? 1 : -1;
  }
  for (int64_t &x : out)
    x *= multiple;
  return out;
}

} // namespace galaxy::planner
