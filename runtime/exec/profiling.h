// The measured half of the profiler (galaxy-run --profile, docs/profiler.md):
// per-instruction times from the Executor, summed per region, gathered over
// ranks, rendered as text, JSON in galaxyc's tree layout, and an SVG plot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/comm/communicator.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt::profiling {

// One instruction of the profiled program, with its mean time per step.
struct InstrSample {
  std::string kernel, block; // as in the plan ("linear", "att.3")
  bool backward = false;
  double seconds = 0; // mean per measured step
  double flops = 0;   // the plan's count (Instr.flops: the op's cost rule)
};

// One rank's measurement of one program.
struct MeasuredRank {
  int rank = 0, world = 1;
  std::string program;    // "train_step"
  int64_t steps = 0;      // measured steps (warm-up excluded)
  double stepSeconds = 0; // mean wall time per measured step (0: unknown)
  // Mean time per step the communication thread ran collectives (0 when
  // they ran in place); the collectives' instruction times are then what
  // the executor waited for them: the exposed part.
  double commBusySeconds = 0;
  std::vector<InstrSample> instrs; // in program order
};

// Builds a MeasuredRank from the Executor's sums (Executor::instrSeconds /
// timedRuns): divides by `runs`, reads kernel, block and FLOPs off the plan.
// `busySeconds`: Executor::commBusySeconds over the same runs.
absl::StatusOr<MeasuredRank> measureRank(const plan::Plan &plan,
                                         const std::string &program,
                                         const std::vector<double> &sumSeconds,
                                         int64_t runs, double stepSeconds = 0,
                                         double busySeconds = 0);

// "all_reduce" | "all_gather" | "reduce_scatter": kernels that talk to peers.
bool isCommunication(const std::string &kernel);
// The region an instruction belongs to: its block ("att.3", "embedding"), or
// "other" when the plan names none.
std::string regionOf(const InstrSample &s);

// Time of one region per phase. Optimizer updates count as their own phase
// and collectives as "comm", whatever their direction.
struct Region {
  std::string name;
  double forward = 0, backward = 0, optimizer = 0, comm = 0;
  double flops = 0;
  double seconds() const { return forward + backward + optimizer + comm; }
};
// Regions in the order the program first reaches them.
std::vector<Region> regionsOf(const MeasuredRank &m);
double totalSeconds(const MeasuredRank &m); // sum over instructions
double commSeconds(const MeasuredRank &m);

// Collective (every rank calls it; comm may be null when world is 1): every
// rank's measurement, in rank order, on every rank.
absl::StatusOr<std::vector<MeasuredRank>>
gatherMeasured(comm::Communicator *comm, const MeasuredRank &mine);

// Region table of `ranks[0]` plus one summary line per rank.
std::string measuredText(const std::vector<MeasuredRank> &ranks);

// {"program", "steps", "world", "ranks": [{"rank", "steps", "step_seconds",
//  "instr_seconds": [...], "comm_seconds", "regions": [...], "tree": [...]}]}.
// The tree has galaxyc's layout (model > layer.N/embedding/... > att/con/...
// > kernel) built from the plan's block names; op nodes list `instrs`, every
// node has "measured": {"seconds", "share", "flops_per_s"}.
nlohmann::json measuredJson(const std::vector<MeasuredRank> &ranks);
// Lossless per-rank form used to gather ranks, and its inverse.
nlohmann::json rankJson(const MeasuredRank &m);
absl::StatusOr<MeasuredRank> rankFromJson(const nlohmann::json &j);

// Adds "measured" to every node of galaxyc's --profile-json output (matched
// by the op nodes' `instrs`, summed up the tree; flops_per_s from the node's
// static forward+backward+optimizer FLOPs) and a "measured" summary to each
// rank. Fails naming the mismatch when ranks, programs or instruction counts
// differ (the plan was not compiled from the same config).
absl::Status mergeMeasured(nlohmann::json &staticProfile,
                           const std::vector<MeasuredRank> &ranks);

// Horizontal stacked bars, one per rank: time per region (colour by block
// kind), with a second thin bar of forward / backward / optimizer / comm.
std::string profileSvg(const std::vector<MeasuredRank> &ranks,
                       const std::string &title);

} // namespace galaxy::rt::profiling
