// Assembles a global tensor from the box each rank holds (for saving sharded
// parameters and returning sharded program outputs). Any sharding works: one
// sharded dim, several, or replicas (later ranks overwrite equal values).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"

namespace galaxy::rt {

// Collective over `comm`: every rank passes its own box (offset, shape) of a
// tensor of shape `global` and that box's 4-byte elements (f32 or i32 bits).
// Returns the global tensor on every rank, or an error naming `what` when a
// box lies outside `global` or the boxes leave elements uncovered.
absl::StatusOr<std::vector<float>>
gatherBoxes(comm::Communicator &comm, const float *local,
            const std::vector<int64_t> &global,
            const std::vector<int64_t> &offset,
            const std::vector<int64_t> &shape, std::string_view what);

} // namespace galaxy::rt
