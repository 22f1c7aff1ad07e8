// Test helper: a small chain model (dropout(tanh(linear)) layers, then a
// linear classifier with cross-entropy) as a serial plan and as pipeline stage
// plans in the layout galaxyc's pipeline lowering emits (train_fwd.b<n> /
// train_bwd.b<n> / eval_step.b<n> / update, stash slots, pp.* bindings), so
// the pipeline runtime can be checked against the serial run without the
// compiler.
#pragma once

#include <string>
#include <vector>

#include "runtime/plan/plan.pb.h"

namespace galaxy::rt::testing {

struct ChainSpec {
  // Feature sizes: dims[0] is the input width (the batch's attention_mask,
  // ModelInfo.seq_len wide), dims.back() the classes; layer l maps dims[l]
  // to dims[l+1].
  std::vector<int64_t> dims = {4, 5, 3};
  int64_t batch = 6;
  double lr = 0.5;
  double dropout = 0.25; // after every hidden tanh (addressed by global row)
  // Pipeline: the first layer of each stage (stageStart[0] == 0).
  std::vector<int> stageStart = {0, 1};
  std::vector<int64_t> microbatches = {3, 2, 1};
  std::string schedule = "1f1b";
  int groupSize = 1; // ranks per stage, data-parallel over a microbatch's rows
  int slots = 0;     // 0: what the schedule needs (plan::stashSlots)
};

// The whole model in one plan of one rank: train_step and eval_step.
plan::Plan chainSerialPlan(const ChainSpec &spec);

// Stage `stage`'s plan for rank `groupRank` of its group.
plan::Plan chainStagePlan(const ChainSpec &spec, int stage, int groupRank);

int chainStages(const ChainSpec &spec);

// DIR/rank<W>.plan.pb for every world rank (serial: DIR/rank0.plan.pb).
bool writeChainPlans(const std::string &dir, const ChainSpec &spec);
bool writeChainSerialPlan(const std::string &dir, const ChainSpec &spec);

} // namespace galaxy::rt::testing
