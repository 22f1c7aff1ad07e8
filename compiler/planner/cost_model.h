// Work -> seconds on a device (runtime/plan/devices.proto): compute at the
// device's GEMM throughput (elementwise ops at its memory throughput where
// calibrated), collectives as latency x ring steps + bytes / bandwidth over
// the slowest link of the group that runs them.
#pragma once

#include <vector>

#include "compiler/planner/work.h"
#include "runtime/plan/devices.pb.h"

namespace galaxy::planner {

struct Seconds {
  double compute = 0, comm = 0;
  double total() const { return compute + comm; }
};

// A group of ranks running collectives together: its size and the worst
// link among its members (Network's figures where no Link refines a pair).
struct GroupNet {
  int size = 1;
  double bytesPerSec = 0, latencySec = 0;
};
GroupNet groupNet(const plan::Devices &d, const std::vector<int> &ranks);
// The link between two ranks (a pipeline's send/recv).
GroupNet pairNet(const plan::Devices &d, int a, int b);

// The device's GEMM throughput (FLOP/s) at GEMMs of `rows` rows:
// gemm_at_rows interpolated in log(rows) and clamped at its ends; `gflops`
// where the table is empty or rows is 0 (unknown).
double gemmFlopsPerSec(const plan::Device &dev, double rows);

// What `w` costs device `dev` inside `net`.
Seconds timeOf(const Work &w, const plan::Device &dev, const GroupNet &net);

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

} // namespace galaxy::planner
