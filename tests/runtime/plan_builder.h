// Test helper: builds small plans by hand (buffers, params, instructions) so
// the executor can be exercised without the compiler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/plan/plan.pb.h"

namespace galaxy::rt::testing {

using Shape = std::vector<int64_t>;

// Start offsets of consecutive shards: {3,1,2} -> {0,3,4}.
Shape offsetsOf(const Shape &sizes);

class PlanBuilder {
public:
  PlanBuilder(int rank, int world);

  // An arena buffer (laid out one after another, never shared).
  int arena(const std::string &name, const Shape &shape,
            plan::DType dtype = plan::F32);
  // An INPUT buffer filled from batch field `input` ("attention_mask", ...);
  // a non-empty `global` makes it this rank's box at `offset` of the batch.
  int input(const std::string &input, const Shape &shape, plan::DType dtype,
            const Shape &global = {}, const Shape &offset = {});
  // A parameter and its PARAM buffer; `sliceShape` empty = replicated.
  int param(const std::string &name, const Shape &global,
            const Shape &sliceOffset = {}, const Shape &sliceShape = {},
            const std::string &init = "normal", float std = 0.5f);
  // Marks buffer `id` as this rank's box of a `global` tensor.
  void setGlobal(int id, const Shape &global, const Shape &offset);
  // Pipeline plans: moves buffer `id` (ARENA or INPUT) into the stash slot
  // at byte `offset`.
  void setStash(int id, int64_t offset);
  // Optimizer state of parameter `param` (its index), slot `slot` (2: the
  // gradient accumulator of pipeline plans).
  int optState(const std::string &name, int param, int slot);

  plan::Instr &add(const std::string &program, const std::string &kernel,
                   const std::vector<int> &inputs,
                   const std::vector<int> &outputs);
  void bindInput(const std::string &program, const std::string &name,
                 int buffer);
  void bindOutput(const std::string &program, const std::string &name,
                  int buffer);

  plan::Plan &plan() { return plan_; }
  // Sets the arena size; the plan is then ready for Executor::create.
  plan::Plan finish();

private:
  plan::Buffer &newBuffer(const std::string &name, const Shape &shape,
                          plan::DType dtype);
  plan::Program &program(const std::string &name);

  plan::Plan plan_;
  int64_t arenaBytes_ = 0;
};

void setInt(plan::Instr &instr, const std::string &key, int64_t v);
void setInts(plan::Instr &instr, const std::string &key, const Shape &v);
void setFloat(plan::Instr &instr, const std::string &key, double v);

// A data-movement instruction: kernel in {all_gather, reduce_scatter, slice}.
plan::Instr &addMove(PlanBuilder &b, const std::string &program,
                     const std::string &kernel, int x, int y, int64_t dim,
                     const Shape &sizes);

} // namespace galaxy::rt::testing
