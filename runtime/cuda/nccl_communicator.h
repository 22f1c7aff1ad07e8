// Communicator over NCCL for device buffers: one GPU per rank, the NCCL unique
// id exchanged through the TCP rendezvous store (runtime/comm/tcp_store.h).
// NCCL has no uneven all-gather / reduce-scatter, so allGatherV is one
// ncclBroadcast per rank and reduceScatterV one ncclReduce per rank, grouped in
// ncclGroupStart/End: no padding, no trip through host memory.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/comm/communicator.h"

namespace galaxy::comm {

// Joins the group as connectGloo does (rank 0 hosts the store on
// masterHost:masterPort, the others connect), on GPU `device`. Every buffer
// given to the communicator is a DEVICE pointer on that GPU. Operations are
// enqueued on `stream` (a cudaStream_t: pass the CUDA backend's
// DeviceMemory::stream() so they follow the kernels that made their inputs;
// null = the legacy default stream) and waited for before returning, each
// bounded by options.timeout: a lost or stalled peer gives an error naming it
// (the NCCL communicator is then aborted), never a hang. Send/recv tags are
// not sent: NCCL delivers a pair's messages in the order they were issued.
absl::StatusOr<std::unique_ptr<Communicator>>
connectNccl(const CommOptions &options, int device, void *stream = nullptr);

// The GPU of a rank: LOCAL_RANK modulo the visible GPUs (one GPU per rank
// when each host runs at most as many ranks as it has GPUs).
int deviceForLocalRank(int localRank, int visibleDevices);

} // namespace galaxy::comm
