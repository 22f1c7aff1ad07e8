// Pipeline schedules: the order in which one stage runs the forward (F) and
// backward (B) passes of a step's microbatches. Shared by galaxyc (timeline,
// memory report) and galaxy-run (the driver), so both see one schedule.
#pragma once

#include <string>
#include <vector>

namespace galaxy::plan {

struct PipeOp {
  bool forward; // F or B
  int microbatch;
};

// "gpipe": F0..F(m-1), then B0..B(m-1). "1f1b": min(p-s-1, m) warm-up
// forwards, then alternating F/B, then the remaining backwards. Both send
// activations and gradients in ascending microbatch order, so a stage's
// receives match its neighbour's sends one for one.
std::vector<PipeOp> stageSchedule(const std::string &kind, int stage,
                                  int stages, int microbatches);

// Microbatches whose activations a stage holds at once (stash slots): m for
// gpipe, min(p-s, m) for 1f1b.
int stashSlots(const std::string &kind, int stage, int stages,
               int microbatches);

// Slot of a microbatch: slots are reused in FIFO order, which both schedules
// respect (B runs in ascending microbatch order).
inline int slotOf(int microbatch, int slots) { return microbatch % slots; }

// A simulated timeline with F = fwdCost and B = bwdCost time units and free
// communication: per stage, the start time of each op of stageSchedule.
struct Timeline {
  std::vector<std::vector<double>> start; // [stage][op index]
  std::vector<std::vector<PipeOp>> ops;   // [stage]
  double fwdCost = 1, bwdCost = 2;        // as simulated
  double makespan = 0;
  // Idle time over total stage time, and the same relative to busy time
  // (what the (p-1)/m formula predicts for equal stages).
  double bubbleFraction = 0, bubbleOverBusy = 0;
};
Timeline simulate(const std::string &kind, int stages, int microbatches,
                  double fwdCost = 1, double bwdCost = 2);

// Human-readable timeline: one row per stage, one column per time unit
// ("F3", "B0", ".." for idle). `labels` name the rows (default "stage s").
std::string renderTimeline(const Timeline &t,
                           const std::vector<std::string> &labels = {});

} // namespace galaxy::plan
