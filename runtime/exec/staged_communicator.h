// A Communicator over host buffers built on one that takes device buffers
// (NCCL): each call copies its host input to device scratch, runs the
// collective there and copies the result back. For the executor's and
// galaxy-run's small host-side collectives (flags, gathered outputs and
// saves, profiles, barriers), never for the per-step data movement.
#pragma once

#include <memory>

#include "runtime/comm/communicator.h"
#include "runtime/cuda/device_memory.h"

namespace galaxy::comm {

// `device` (buffers on the GPU of `mem`) and `mem` must outlive the result.
std::unique_ptr<Communicator> makeHostStagedCommunicator(Communicator &device,
                                                         rt::DeviceMemory &mem);

} // namespace galaxy::comm
