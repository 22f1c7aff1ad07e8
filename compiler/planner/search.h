// The candidates: every group method over all devices (SPMD), and every
// pipeline of p stages x groups of W/p ranks with every group method and a
// few microbatch counts, each with its splits chosen analytically from the
// probes (probe.h): shares by water-filling under memory caps, whole units
// per list, stage layers by bisection on the slowest stage's time.
#pragma once

#include <string>
#include <vector>

#include "compiler/config/galaxy_config.h"
#include "compiler/planner/cost_model.h"
#include "compiler/planner/probe.h"
#include "runtime/plan/devices.pb.h"

namespace galaxy::planner {

struct RankTime {
  double compute = 0, comm = 0, idle = 0;
  double memory = 0; // bytes
};

struct Candidate {
  std::string label; // "galaxy TP/SP/TP", "pp 4 x tp, 8 microbatches"
  // The user's config with the choice applied (mode, methods, lists, stages,
  // microbatches, world_size); not yet resolved.
  config::GalaxyConfig cfg;
  double time = 0; // predicted step (or forward) seconds
  std::vector<RankTime> ranks;
  // Does not fit: the rank that lacks the most memory and by how much.
  bool fits = true;
  int lackRank = -1;
  double needBytes = 0, lackBytes = 0;
};

struct SearchInput {
  const plan::Devices &devices;
  const config::GalaxyConfig &base;
  bool latency = false; // forward latency instead of the training step
  // Probe memory x this: raised when a compiled plan needs more than its
  // estimate (the arena packs activations; affine is an approximation).
  double memScale = 1.0;
};

// The user's config without parallel keys, `m` applied (as the group's mode
// in a pipeline).
config::GalaxyConfig choiceBase(const config::GalaxyConfig &base,
                                const Method &m, bool asGroup, int world);

// `m` over every device.
Candidate searchSpmd(const SearchInput &in, const MethodModel &m);
// A pipeline of `stages` stages, each a group of W / stages ranks running
// `m` (serial for groups of one): one candidate per microbatch count.
std::vector<Candidate> searchPipeline(const SearchInput &in,
                                      const MethodModel &m, int stages);

// A pipeline's step from each stage's per-microbatch work (optimizer
// excluded) and each rank's optimizer work: sum of stage times + (m - 1) x
// the slowest stage + the slowest update; the forward latency is the sum of
// stage times. `work[s][r]`, `opt[s][r]` by stage and group rank. Fills
// `ranks` (world order) with compute / comm / idle.
// `p2pBytes[s]`: what stage s sends on per microbatch (both directions).
double pipelineStep(const SearchInput &in, int microbatches,
                    const std::vector<std::vector<Work>> &work,
                    const std::vector<std::vector<Work>> &opt,
                    const std::vector<double> &p2pBytes,
                    std::vector<RankTime> *ranks);

// Bytes one microbatch sends across a stage boundary (activations forward,
// their gradient back when training), estimated as one hidden state; the
// compiled plans' own boundary tensors replace it (exact.cc).
double boundaryBytes(const SearchInput &in, int microbatches);

// A pipeline's update phase: what a stage does once per step after its
// microbatches, in its own program (@update). There each gradient's
// all-reduce stands between the microbatches' accumulation and its update,
// and the zero_grad after the update keeps the lowering from sinking the
// pair (compiler/CoalescePolicy.h), so the small ones the SPMD probes saw
// coalesced each run alone: updateAlone(w) prices w's coalesced all-reduces
// as separate ones. optimizerPart(w): w's optimizer and its coalesced
// all-reduces, as the update runs them; withoutOptimizer(w): the rest.
Work optimizerPart(const Work &w);
Work withoutOptimizer(Work w);
Work updateAlone(Work w);

} // namespace galaxy::planner
