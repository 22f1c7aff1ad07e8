// The static profile: FLOPs, parameters, communication and memory of every
// rank, read off the partitioned module (per-rank shapes from layouts) and the
// lowered plans (memory). Counting rules are in counting_rules.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mlir/IR/BuiltinOps.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::profile {

// Figures of one tree node (or one rank, or all ranks). Element counts, not
// bytes, for parameters; FLOPs follow counting_rules.h.
struct Figures {
  int64_t params = 0, trainable = 0; // parameter elements held (a rank's slice)
  int64_t fwdMacs = 0, fwdFlops = 0;
  int64_t bwdMacs = 0, bwdFlops = 0;
  int64_t optFlops = 0;  // optimizer updates
  int64_t commBytes = 0; // collectives, see CommOp
  int64_t ops = 0;       // IR ops (= plan instructions) counted here

  Figures &operator+=(const Figures &o);
  int64_t stepFlops() const { return fwdFlops + bwdFlops + optFlops; }
};

// A node of the module tree: model -> group (embedding, layer.N, pooler, head)
// -> block (embedding, att, con, mlp, pooler, head) -> op kind.
struct Node {
  std::string name; // "model", "layer.3", "att", "linear"
  std::string kind; // "model" | "group" | "block" | "op"
  Figures fig;
  // op nodes: indices of their instructions in the plan's "train_step" program
  // (or "eval_step" when the module has no @train_step), so measured
  // per-instruction times can be summed into the same node.
  std::vector<int> instrs;
  std::vector<Node> children;
  // The model's own parameters here, each counted once at its global shape
  // (rank-independent; the total's `fig.params` takes these).
  int64_t globalParams = 0, globalTrainable = 0;
};

// Traffic of one collective kind in one direction, per step. Convention: a rank
// "moves" the buffer it hands to or receives from the collective at full local
// size: all_reduce its whole local tensor, all_gather its gathered output,
// reduce_scatter its whole (partial) input. Algorithm-specific wire traffic
// (ring: 2(W-1)/W of that for all_reduce) is left to the measured profile.
struct CommOp {
  std::string kind; // "all_reduce" | "all_gather" | "reduce_scatter"
  bool backward = false;
  int64_t count = 0, bytes = 0;
};

// Bytes per rank (sums over ranks in the total).
struct Memory {
  int64_t weights = 0; // every parameter slice the rank holds
  int64_t gradients =
      0; // sum over trainable slices (what torch's .grad would hold)
  int64_t gradientsLive =
      0; // largest set of gradients live at once in Galaxy's plan
  int64_t optimizerState =
      0;              // adamw: exp_avg + exp_avg_sq (2x trainable); sgd: 0
  int64_t inputs = 0; // batch buffers of the program
  int64_t activationArena =
      0; // the plan's arena: activations and gradients, liveness-packed
  // weights + optimizer state + inputs + arena (gradients live in the arena).
  int64_t peak = 0;
};

struct RankProfile {
  int rank = 0, world = 1;
  std::string program; // "train_step" or "eval_step"
  Figures fig;         // whole rank (== tree.fig)
  std::vector<CommOp> comm;
  Memory memory;
  Node tree;
  // Op kinds the rules do not know, counted as 0 FLOPs (listed so nobody trusts
  // a silent zero).
  std::vector<std::string> uncounted;
};

struct Profile {
  std::string optimizer; // "sgd" | "adamw"
  int64_t batch = 0, seq = 0;
  std::vector<RankProfile> ranks;
  // Sums over ranks, except parameters: the model's own (global) parameters,
  // each counted once, so total.fig.params is the model size whatever the mode.
  RankProfile total;
};

// Profiles one rank. `module` is the partitioned module (compileToStage(...,
// "partition")); `plan` is lowerToPlan(module, cfg, {rank, world}) and supplies
// the rank, the world and the memory figures.
absl::StatusOr<RankProfile> profileRank(mlir::ModuleOp module,
                                        const plan::Plan &plan);

// profileRank for every plan (one per rank, in rank order) plus the total.
// The plans are lowerToPlan's, whose sizes it checked (plan::checkPlanSizes),
// so the memory sums here cannot wrap.
absl::StatusOr<Profile> profileModule(mlir::ModuleOp module,
                                      const std::vector<plan::Plan> &plans);

// Depth-first search by path, e.g. {"layer.0", "att"}; nullptr when absent.
const Node *findNode(const Node &root, const std::vector<std::string> &path);

} // namespace galaxy::profile
