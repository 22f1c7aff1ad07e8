#include "compiler/planner/cost_model.h"

#include <algorithm>
#include <cmath>
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

double gemmFlopsPerSec(const plan::Device &dev, double rows) {
  const auto &t = dev.gemm_at_rows();
  if (t.empty() || rows <= 0)
    return dev.gflops() * 1e9;
  if (rows <= t[0].rows())
    return t[0].gflops() * 1e9;
  for (int i = 1; i < t.size(); ++i)
    if (rows <= t[i].rows()) {
      const double x0 = std::log(double(t[i - 1].rows()));
      const double x1 = std::log(double(t[i].rows()));
      const double f = x1 > x0 ? (std::log(rows) - x0) / (x1 - x0) : 1;
      return (t[i - 1].gflops() + f * (t[i].gflops() - t[i - 1].gflops())) *
             1e9;
    }
  return t[t.size() - 1].gflops() * 1e9;
}

Seconds timeOf(const Work &w, const plan::Device &dev, const GroupNet &net) {
  Seconds s;
  const double flops = dev.gflops() * 1e9;
  const double gemm = gemmFlopsPerSec(dev, w.gemmRows());
  const double ew = dev.elementwise_gbps() * 1e9; // bytes per second
  s.compute =
      w.gemmFlops / gemm + (ew > 0 ? (w.otherBytes + w.optBytes) / ew
                                   : (w.otherFlops + w.optFlops) / flops);
  if (net.size > 1) {
    const double g = net.size;
    const double bw = net.bytesPerSec > 0 ? net.bytesPerSec
                                          : std::numeric_limits<double>::max();
    // A coalesced group is one all-reduce of its members' bytes on the
    // host; a CUDA rank runs the members one by one in its stream
    // (runtime/exec/executor.cpp, bindGroups).
    const double groups =
        dev.backend() == "cuda" ? w.coalescedCount : w.coalescedGroups;
    s.comm = (w.reduceCount + groups) * 2 * (g - 1) * net.latencySec +
             (w.reduceBytes + w.coalescedBytes) * 2 * (g - 1) / g / bw +
             w.gatherCount * (g - 1) * net.latencySec +
             w.gatherBytes * (g - 1) / g / bw;
  }
  return s;
}

} // namespace galaxy::planner
