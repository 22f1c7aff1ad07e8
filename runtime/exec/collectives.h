// The data-movement kernels of docs/kernels.md (all_reduce, all_gather,
// reduce_scatter, slice), run by the executor with the rank's Communicator.
// Shapes are checked once when the plan is bound; running only moves data.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {

enum class MoveKind { kAllReduce, kAllGather, kReduceScatter, kSlice, kPad };

// One bound data-movement instruction. The full tensor is viewed as
// [pre, N, post] around axis `dim`; rank r's shard is [pre, sizes[r], post]
// starting at offsets[r] along the axis.
struct DataMove {
  MoveKind kind = MoveKind::kAllReduce;
  plan::DType dtype = plan::F32;
  int64_t numel = 0; // all_reduce: elements of x (== y)
  int64_t pre = 1, post = 1;
  std::vector<int64_t> sizes, offsets;
};

bool isDataMovement(std::string_view kernel);

// Checks instr against its bound tensors for `rank` of `world` and returns the
// move. `where` prefixes error messages (e.g. "train_step instr 12 (att.0)").
absl::StatusOr<DataMove> bindDataMove(const plan::Instr &instr,
                                      const std::vector<Tensor> &in,
                                      const std::vector<Tensor> &out, int rank,
                                      int world, std::string_view where);

// Runs a bound move. `comm` may be null only when world is 1. `scratch` is
// reused between calls for packing shards that are not contiguous.
absl::Status runDataMove(const DataMove &move, const Tensor &x, const Tensor &y,
                         comm::Communicator *comm, int rank,
                         std::vector<char> &scratch);

// One member of a coalesced all-reduce (plan Instr.coalesce): an f32
// all_reduce's bound move and tensors (x may be y).
struct ReduceMember {
  const DataMove *move;
  Tensor x, y;
};

// Sums every member's x over the ranks into its y as one all-reduce: the
// inputs are packed one after another into `scratch`, summed in one call
// (a small all-reduce costs its latency, not its bytes), and unpacked. The
// result of each member is what its own all-reduce would give (up to the
// order the ranks' values are added in). All ranks must call it with the
// same members' sizes, in the same order. Every member is an f32 all_reduce
// (the Executor checks a plan's groups when it binds them).
absl::Status runCoalescedAllReduce(const std::vector<ReduceMember> &members,
                                   comm::Communicator *comm, int world,
                                   std::vector<char> &scratch);

} // namespace galaxy::rt
