// The data-movement kernels (collectives.h) on device buffers: slice and pad
// with DeviceMemory::copy2D / fillZero, collectives through a communicator
// that takes device buffers (NCCL) or, for one that takes host buffers (Gloo),
// staged through host memory.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "runtime/comm/communicator.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/exec/collectives.h"

namespace galaxy::rt {

class DeviceMover {
public:
  // `comm` (may be null for world 1) and `mem` must outlive the mover.
  DeviceMover(DeviceMemory &mem, comm::Communicator *comm, bool commOnDevice)
      : mem_(mem), comm_(comm), commOnDevice_(commOnDevice) {}
  ~DeviceMover();
  DeviceMover(const DeviceMover &) = delete;
  DeviceMover &operator=(const DeviceMover &) = delete;

  // The device counterpart of runDataMove (same shapes, same results).
  absl::Status run(const DataMove &move, const Tensor &x, const Tensor &y,
                   int rank);

private:
  absl::StatusOr<char *> scratch(size_t bytes);
  absl::Status viaHost(const DataMove &move, const Tensor &x, const Tensor &y,
                       int rank);

  DeviceMemory &mem_;
  comm::Communicator *comm_;
  bool commOnDevice_;
  void *scratch_ = nullptr;
  size_t scratchBytes_ = 0;
  std::vector<char> hostX_, hostY_, hostScratch_;
};

} // namespace galaxy::rt
