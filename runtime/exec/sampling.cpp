#include "runtime/exec/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/philox.h"

namespace galaxy::rt {

namespace {

// Separates the sampling draws' counter space from dropout's
// (dropoutBlock's third word is its step, small).
constexpr uint32_t kSamplingStream = 0x53414D50u; // "SAMP"

// u in [0, 1) with 53 random bits from the block at (promptIndex, step).
double samplingUniform(uint64_t seed, int64_t promptIndex, int64_t step) {
  const uint64_t p = uint64_t(promptIndex), s = uint64_t(step);
  const Philox4x32Words w =
      philox4x32_10(uint32_t(p), uint32_t(p >> 32), uint32_t(s),
                    kSamplingStream ^ uint32_t(s >> 32), uint32_t(seed),
                    uint32_t(seed >> 32));
  const uint64_t bits = (uint64_t(w.w[0]) << 21) ^ (uint64_t(w.w[1]) >> 11);
  return double(bits & ((uint64_t(1) << 53) - 1)) * 0x1p-53;
}

int32_t argmax(const float *l, int64_t n) {
  int32_t arg = 0;
  for (int64_t v = 1; v < n; ++v)
    if (l[v] > l[arg])
      arg = int32_t(v);
  return arg;
}

} // namespace

absl::Status checkSamplingOptions(const SamplingOptions &o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--temperature must be a finite number >= 0 (0: greedy), got %g",
        o.temperature));
  if (o.topK < 0)
    return absl::InvalidArgumentError(
        absl::StrFormat("--top-k must be >= 0 (0: no top-k), got %d", o.topK));
  if (!(o.topP > 0 && o.topP <= 1))
    return absl::InvalidArgumentError(absl::StrFormat(
        "--top-p must be in (0, 1] (1: no nucleus), got %g", o.topP));
  return absl::OkStatus();
}

int32_t nextToken(const float *logits, int64_t V, const SamplingOptions &o,
                  int64_t promptIndex, int64_t step) {
  if (o.temperature == 0 || V == 1)
    return argmax(logits, V);
  // Tokens from most to least likely (ties: lower id first).
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t n = V;
  if (o.topK > 0 && o.topK < V) {
    // Hugging Face keeps every token at least as likely as the k-th.
    const float kth = logits[order[o.topK - 1]];
    n = o.topK;
    while (n < V && logits[order[n]] >= kth)
      ++n;
  }
  const double top = double(logits[order[0]]);
  std::vector<double> p(V, 0.0); // by token id; 0 outside the kept set
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp((double(logits[order[i]]) - top) / o.temperature);
    p[order[i]] = e;
    sum += e;
  }
  if (o.topP < 1) {
    // Keep token i while the mass before it is below top-p: the smallest
    // most-likely set reaching top-p, never empty.
    double before = 0;
    int64_t m = 0;
    while (m < n && before < o.topP * sum)
      before += p[order[m++]];
    for (int64_t i = m; i < n; ++i)
      p[order[i]] = 0;
    sum = before;
  }
  // Walk in token-id order, not probability order, so that near-equal logits
  // swapping places under rounding (another parallel mode) move no draw.
  const double u = samplingUniform(o.seed, promptIndex, step) * sum;
  double acc = 0;
  int32_t last = order[0];
  for (int64_t v = 0; v < V; ++v) {
    if (p[v] == 0)
      continue;
    acc += p[v];
    last = int32_t(v);
    if (u < acc)
      return last;
  }
  return last; // u rounded up to the total
}

} // namespace galaxy::rt
