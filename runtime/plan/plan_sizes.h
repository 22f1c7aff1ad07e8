// Every size in a plan, checked before anything is allocated from it: the
// compiler runs this on what it lowered, galaxy-run on what it loads (a plan
// file is input like any other: damaged, hand-edited or hostile).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::plan {

// What a plan asks the runtime to allocate on one rank, in bytes.
struct PlanMemory {
  int64_t arena = 0;          // the activation arena
  int64_t stash = 0;          // pipeline stash slots (slots x slot bytes)
  int64_t params = 0;         // parameter slices
  int64_t optimizerState = 0; // AdamW moments, gradient accumulators
  int64_t inputs = 0;         // batch inputs outside the stash
  int64_t total = 0;

  // Each part is below kMaxPlanBytes, so sums over <= 2^16 ranks never wrap.
  PlanMemory &operator+=(const PlanMemory &o) {
    arena += o.arena;
    stash += o.stash;
    params += o.params;
    optimizerState += o.optimizerState;
    inputs += o.inputs;
    total += o.total;
    return *this;
  }
};

// Checks every shape (no negative dimension, at most kMaxTensorElements
// elements), offset (>= 0, the buffer's end representable), arena and stash
// size, and the model's sizes (runtime/plan/size_limits.h), then sums what
// the plan allocates (at most kMaxPlanBytes). Errors are InvalidArgument,
// prefixed by `origin` ("plan DIR/rank0.plan.pb"), and name the buffer or
// field and its value; the caller says what to do about it.
absl::StatusOr<PlanMemory> checkPlanSizes(const Plan &p,
                                          const std::string &origin);
// The same for a plan read from a file: the refusal tells the user to
// recompile it.
absl::StatusOr<PlanMemory> checkLoadedPlanSizes(const Plan &p,
                                                const std::string &origin);

} // namespace galaxy::plan
