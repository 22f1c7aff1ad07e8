#include "compiler/planner/cost_model.h"

#include <algorithm>
#include <limits>

namespace galaxy::planner {
namespace {

// Network figures are gigabits per second and microseconds.
double bytesPerSec(double gbps) { return gbps * 1e9 / 8; }

const plan::Link *linkOf(const plan::Devices &d, int a, int b) {
  for (const plan::Link &l : d.network().links())
    if ((l.a() == a && l.b() == b) || (l.a() == b && l.b() == a))
      return &l;
  return nullptr;
}

} // namespace

GroupNet pairNet(const plan::Devices &d, int a, int b) {
  GroupNet n{2, bytesPerSec(d.network().bandwidth_gbps()),
             d.network().latency_us() * 1e-6};
  if (const plan::Link *l = linkOf(d, a, b)) {
    n.bytesPerSec = bytesPerSec(l->bandwidth_gbps());
    n.latencySec = l->latency_us() * 1e-6;
  }
  return n;
}

GroupNet groupNet(const plan::Devices &d, const std::vector<int> &ranks) {
  GroupNet n{static_cast<int>(ranks.size()),
             bytesPerSec(d.network().bandwidth_gbps()),
             d.network().latency_us() * 1e-6};
  if (n.size < 2)
    return n;
  for (size_t i = 0; i < ranks.size(); ++i)
    for (size_t j = i + 1; j < ranks.size(); ++j)
      if (const plan::Link *l = linkOf(d, ranks[i], ranks[j])) {
        n.bytesPerSec =
            std::min(n.bytesPerSec, bytesPerSec(l->bandwidth_gbps()));
        n.latencySec = std::max(n.latencySec, l->latency_us() * 1e-6);
      }
  return n;
}

Seconds timeOf(const Work &w, const plan::Device &dev, const GroupNet &net) {
  Seconds s;
  const double flops = dev.gflops() * 1e9;
  const double ew = dev.elementwise_gbps() * 1e9; // bytes per second
  s.compute =
      w.gemmFlops / flops + (ew > 0 ? (w.otherBytes + w.optBytes) / ew
                                    : (w.otherFlops + w.optFlops) / flops);
  if (net.size > 1) {
    const double g = net.size;
    const double bw = net.bytesPerSec > 0 ? net.bytesPerSec
                                          : std::numeric_limits<double>::max();
    s.comm = w.reduceCount * 2 * (g - 1) * net.latencySec +
             w.reduceBytes * 2 * (g - 1) / g / bw +
             w.gatherCount * (g - 1) * net.latencySec +
             w.gatherBytes * (g - 1) / g / bw;
  }
  return s;
}

} // namespace galaxy::planner
