// Runs a pipeline plan (Plan.pipeline.num_stages > 0): one stage's share of
// the model, for one rank of that stage's SPMD group. The driver splits a
// step's batch into the plan's microbatches, runs the stage's schedule
// (runtime/plan/schedule.h) and moves activations / gradients to the
// neighbour stages' same-member ranks; the executor runs the programs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "runtime/io/dataset.h"

namespace galaxy::rt {

// Rows [rowBegin, rowBegin + rows) of `batch`, as a batch of its own. The
// fields named in `whole` are values of the global batch, not per row (a
// causal LM's num_targets, which every microbatch's loss divides by): every
// microbatch gets all of them.
io::Batch sliceBatch(const io::Batch &batch, int64_t rowBegin, int64_t rows,
                     const std::set<std::string> &whole = {});

// What a rank measured since the last resetStats().
struct PipelineStats {
  double busySeconds = 0; // inside Executor::run
  double idleSeconds = 0; // blocked on receives (and on the last sends)
  int peakSlots = 0;      // most stash slots holding a microbatch at once
  int64_t steps = 0;      // trainStep calls
};

// evalBatch's result: on world rank 0 the loss (mean over the B rows) and the
// logits [B, C], row-major; empty on the other ranks.
struct PipelineEval {
  double loss = 0;
  std::vector<float> logits;
};

class PipelineDriver {
public:
  // Collective over `world` (every rank calls it, after the executor was
  // created on its stage's group communicator). Checks the plan's pipeline
  // against the world, splits the point-to-point channels with the
  // neighbour stages and checks that both sides agree on the tensors that
  // cross (names, sizes, microbatches). `world` (null: a world of one rank)
  // and `executor` are not owned and must outlive the driver.
  static absl::StatusOr<std::unique_ptr<PipelineDriver>>
  create(comm::Communicator *world, Executor &executor);
  ~PipelineDriver(); // stops the sender threads

  int stage() const { return stage_; }
  int numStages() const { return stages_; }

  // One optimizer step on the global batch (ModelInfo.batch_size rows; every
  // rank passes the same batch): every microbatch's train_fwd / train_bwd in
  // schedule order, then "update". Returns the step's loss, the mean over
  // the global batch, on every rank. `step` is 1-based (dropout, AdamW).
  absl::StatusOr<double> trainStep(const io::Batch &batch, uint64_t seed,
                                   int64_t step);
  // Forward only (eval mode) over the microbatches of a global batch.
  absl::StatusOr<PipelineEval> evalBatch(const io::Batch &batch, uint64_t seed);

  // Collective over the world: every stage's group gathers its parameters,
  // the stage leaders send them to world rank 0, which writes all of them
  // as one safetensors file (atomically); other ranks write nothing.
  absl::Status saveParams(const std::string &path);
  // The same collection without the write: on world rank 0 every stage's
  // global tensors (with `withOptState`, their AdamW moments too, see
  // Executor::gatherParams), empty elsewhere. Collective over the world.
  absl::StatusOr<Executor::GatheredParams> gatherToLead(bool withOptState);

  const PipelineStats &stats() const { return stats_; }
  void resetStats() { stats_ = {}; }

  class Channel; // a point-to-point link to a neighbour (pipeline_channel.h)

private:
  PipelineDriver(comm::Communicator *world, Executor &ex);
  absl::Status init();
  absl::Status handshake();
  // Tied parameters (Pipeline.tied; pipeline_ties.cpp): one communicator per
  // set of stages holding copies, over this group position's ranks on them,
  // checked to hold equal slices; and the per-step sum of the copies'
  // gradient accumulators, before "update".
  absl::Status initTies();
  absl::Status sumTiedGradients();
  // Runs a program on the executor, counting its time as busy.
  absl::StatusOr<Outputs> runTimed(const std::string &program,
                                   const io::Batch &batch,
                                   const KernelContext &ctx, int slot);
  // Receives the tensors `names` (by element count of `program`'s inputs)
  // of microbatch `mb`, counting the wait as idle.
  absl::StatusOr<std::map<std::string, std::vector<float>>>
  receive(Channel &from, const std::string &program,
          const std::vector<std::string> &names, int mb);
  absl::Status send(Channel &to, Outputs &outs,
                    const std::vector<std::string> &names, int mb);
  absl::Status drainSends();
  // The message of a failed step: where it failed, plus (when a neighbour
  // only shut down or gave up) which rank of the world was lost.
  absl::Status diagnose(absl::Status s, const std::string &where);
  std::string who(int stage) const;

  comm::Communicator *world_;
  Executor &ex_;
  int stage_ = 0, stages_ = 1, groupSize_ = 1, groupRank_ = 0;
  std::string schedule_;
  std::vector<int64_t> sizes_, offsets_; // per microbatch
  // Batch fields the plan reads as 0-d inputs: passed whole to every
  // microbatch (sliceBatch).
  std::set<std::string> wholeFields_;
  int slots_ = 1;
  // Boundary tensors by the K of pp.in.K / pp.out.K, sorted, so both sides
  // of a channel send and receive them in one order.
  std::vector<std::string> inKeys_, outKeys_;
  // Channels to the previous and next stage: activations flow forward on
  // one communicator, gradients back on another.
  std::unique_ptr<Channel> actIn_, gradOut_, actOut_, gradIn_;
  struct Tie {
    std::string name;
    float *grad = nullptr; // the accumulator (OPT_STATE slot 2), host memory
    int64_t elements = 0;
    comm::Communicator *comm = nullptr; // in tieComms_
    bool whole = false;                 // summed over every rank of the stages
    bool partial = false; // this copy's gradient is a partial sum (P)
  };
  std::vector<Tie> ties_;
  // By the stages holding the copies (this one included) and whether they
  // are summed over whole groups.
  std::map<std::pair<std::vector<int>, bool>,
           std::unique_ptr<comm::Communicator>>
      tieComms_;
  PipelineStats stats_;
  bool broken_ = false; // a step failed: the channels are unusable
};

} // namespace galaxy::rt
