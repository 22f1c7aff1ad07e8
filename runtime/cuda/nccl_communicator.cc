#include "runtime/cuda/nccl_communicator.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/failure_report.h"
#include "runtime/comm/heartbeat.h"
#include "runtime/comm/rendezvous.h"
#include "runtime/comm/socket_io.h"
#include "runtime/comm/tcp_store.h"
#include "runtime/comm/tcp_store_server.h"

namespace galaxy::comm {
namespace {

using ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Process-wide state shared by the world communicator and its splits.
// The rendezvous state is the base, destroyed last (as GlooWorld's).
struct NcclWorld : Rendezvous {
  ~NcclWorld() {
    if (store && worldSize > 1)
      (void)store->put(leftKey(worldRank), selfInfo);
  }
  ms timeout{60000};
  int worldRank = 0, worldSize = 1, device = 0;
  cudaStream_t stream = nullptr;
  std::string selfInfo;
  std::mutex mu;
  std::map<std::string, int> splitCounts; // see GlooWorld::splitCounts
};

ncclDataType_t ncclType(ElemType t) {
  return t == ElemType::kF32 ? ncclFloat32 : ncclInt32;
}

std::string ncclText(ncclResult_t r) {
  std::string s = ncclGetErrorString(r);
  if (const char *last = ncclGetLastError(nullptr); last && *last)
    absl::StrAppend(&s, ": ", last);
  return s;
}

class NcclCommunicator final : public Communicator {
public:
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>>
  create(std::shared_ptr<NcclWorld> world, std::vector<int> worldRanks,
         const std::string &prefix);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(worldRanks_.size()); }
  int worldRank(int rank) const override { return worldRanks_.at(rank); }

  absl::Status reduceScatterV(const float *in, float *out,
                              const std::vector<size_t> &counts) override;
  absl::Status barrier() override;
  absl::StatusOr<std::unique_ptr<Communicator>>
  split(const std::vector<int> &ranks) override;

protected:
  absl::Status allReduceSumT(void *buf, size_t n, ElemType t) override;
  absl::Status allGatherVT(const void *in, size_t inCount, void *out,
                           const std::vector<size_t> &counts,
                           ElemType t) override;
  absl::Status allToAllVT(const void *in, const std::vector<size_t> &sendCounts,
                          void *out, const std::vector<size_t> &recvCounts,
                          ElemType t) override;
  absl::Status broadcastT(void *buf, size_t n, int root, ElemType t) override;
  absl::Status sendRecvT(const void *sendBuf, size_t sendN, int dst,
                         void *recvBuf, size_t recvN, int src, uint32_t tag,
                         ElemType t) override;

private:
  NcclCommunicator(std::shared_ptr<NcclWorld> world,
                   std::vector<int> worldRanks, int rank, std::string prefix)
      : world_(std::move(world)), worldRanks_(std::move(worldRanks)),
        rank_(rank), prefix_(std::move(prefix)) {}

  // Enqueues with `issue` (NCCL calls, possibly grouped), then waits for the
  // stream, bounded by the timeout; any failure aborts the communicator.
  template <typename F> absl::Status guarded(const char *op, F &&issue);
  // Waits until the non-blocking communicator has no call in progress.
  absl::Status settle(const char *op, Clock::time_point deadline);
  absl::Status fail(const char *op, const std::string &raw, bool timedOut);
  absl::Status checkCounts(const char *op, const char *what,
                           const std::vector<size_t> &counts) const;
  absl::Status checkPeer(const char *op, int peer) const;
  // Device-to-device copy on the communicator's stream (a rank to itself).
  ncclResult_t copySelf(void *dst, const void *src, size_t bytes);

  std::shared_ptr<NcclWorld> world_;
  std::vector<int> worldRanks_;
  int rank_;
  std::string prefix_;
  ncclComm_t comm_ = nullptr;
  int *flag_ = nullptr; // one device int for barrier()
  absl::Status broken_;
};

absl::StatusOr<std::unique_ptr<NcclCommunicator>>
NcclCommunicator::create(std::shared_ptr<NcclWorld> world,
                         std::vector<int> worldRanks,
                         const std::string &prefix) {
  const int n = static_cast<int>(worldRanks.size());
  const int rank = static_cast<int>(
      std::find(worldRanks.begin(), worldRanks.end(), world->worldRank) -
      worldRanks.begin());
  TcpStore &store = *world->store;
  std::unique_ptr<NcclCommunicator> c(
      new NcclCommunicator(world, worldRanks, rank, prefix));
  if (cudaError_t e = cudaSetDevice(world->device); e != cudaSuccess)
    return absl::FailedPreconditionError(
        absl::StrFormat("rank %d: cannot use GPU %d: %s", world->worldRank,
                        world->device, cudaGetErrorString(e)));
  if (cudaMalloc(reinterpret_cast<void **>(&c->flag_), sizeof(int)) !=
      cudaSuccess)
    return absl::ResourceExhaustedError(absl::StrFormat(
        "rank %d: cannot allocate on GPU %d", world->worldRank, world->device));

  // The group's first member makes the unique id; the others read it.
  ncclUniqueId id{};
  const std::string key = absl::StrCat(prefix, "nccl_unique_id");
  if (rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
      return absl::InternalError(
          absl::StrCat("ncclGetUniqueId: ", ncclText(r)));
    if (absl::Status s =
            store.put(key, std::string_view(id.internal, sizeof id.internal));
        !s.ok())
      return s;
  } else {
    absl::StatusOr<std::string> v = store.fetch(key, world->timeout);
    if (!v.ok())
      return absl::DeadlineExceededError(absl::StrFormat(
          "rank %d: world rank %d (first of the group) did not publish the "
          "NCCL id at master %s within %s (was it started, with the same "
          "--master and world size?): %s",
          world->worldRank, worldRanks[0], world->master,
          formatDuration(world->timeout), v.status().message()));
    if (v->size() != sizeof id.internal)
      return absl::InternalError(
          absl::StrFormat("store key %s holds %d bytes, not an NCCL id of %d",
                          key, v->size(), sizeof id.internal));
    std::copy(v->begin(), v->end(), id.internal);
  }
  // Non-blocking init, so a missing peer is a timeout here, not a hang.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&c->comm_, n, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress)
    return absl::InternalError(
        absl::StrFormat("rank %d: ncclCommInitRank (%d ranks, GPU %d): %s",
                        world->worldRank, n, world->device, ncclText(r)));
  if (absl::Status s = c->settle("NCCL init", Clock::now() + world->timeout);
      !s.ok())
    return s;
  return c;
}

NcclCommunicator::~NcclCommunicator() {
  cudaSetDevice(world_->device);
  if (comm_ && broken_.ok()) {
    // Finalize flushes outstanding work; bounded so shutdown never hangs.
    ncclResult_t r = ncclCommFinalize(comm_);
    const auto deadline = Clock::now() + std::min(world_->timeout, ms(10000));
    while (r == ncclInProgress && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ncclCommGetAsyncError(comm_, &r);
    }
    if (r == ncclSuccess)
      ncclCommDestroy(comm_);
    else
      ncclCommAbort(comm_);
  }
  if (flag_)
    cudaFree(flag_);
}

absl::Status NcclCommunicator::settle(const char *op,
                                      Clock::time_point deadline) {
  ncclResult_t st = ncclInProgress;
  for (int spin = 0;; ++spin) {
    if (ncclResult_t r = ncclCommGetAsyncError(comm_, &st); r != ncclSuccess)
      st = r;
    if (st == ncclSuccess)
      return absl::OkStatus();
    if (st != ncclInProgress)
      return fail(op, ncclText(st), false);
    if (Clock::now() > deadline)
      return fail(op, "timed out", true);
    if (spin > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

template <typename F>
absl::Status NcclCommunicator::guarded(const char *op, F &&issue) {
  if (!broken_.ok())
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s on a communicator that already failed: %s", op, broken_.message()));
  cudaSetDevice(world_->device);
  const auto deadline = Clock::now() + world_->timeout;
  ncclResult_t r = issue();
  if (r != ncclSuccess && r != ncclInProgress)
    return fail(op, ncclText(r), false);
  if (absl::Status s = settle(op, deadline); !s.ok())
    return s;
  // Wait for the stream while watching NCCL's own error state.
  for (int spin = 0;; ++spin) {
    const cudaError_t q = cudaStreamQuery(world_->stream);
    if (q == cudaSuccess)
      return absl::OkStatus();
    if (q != cudaErrorNotReady)
      return fail(op, absl::StrCat("CUDA: ", cudaGetErrorString(q)), false);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress)
      return fail(op, ncclText(async), false);
    if (Clock::now() > deadline)
      return fail(op, "timed out", true);
    if (spin > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

absl::Status NcclCommunicator::fail(const char *op, const std::string &raw,
                                    bool timedOut) {
  TcpStore &store = *world_->store;
  const ms timeout = world_->timeout;
  std::string reason = timedOut
                           ? absl::StrCat("timed out after ",
                                          formatDuration(timeout), " in ", op)
                           : absl::StrCat(op, ": ", raw);
  // Publish first, so peers can tell this rank gave up rather than died.
  bool storeLost =
      !store.put(absl::StrCat(prefix_, "abort/", rank_), reason).ok();
  if (comm_)
    ncclCommAbort(comm_);
  comm_ = nullptr;

  std::vector<PeerReport> peers;
  for (int r = 0; r < size(); ++r)
    if (r != rank_)
      peers.push_back({worldRanks_[r], PeerReport::kSilent, ""});
  const ms grace = std::clamp(timeout / 10, ms(200), ms(3000));
  const auto deadline = Clock::now() + grace;
  while (!storeLost) {
    bool pending = false;
    for (size_t i = 0; i < peers.size() && !storeLost; ++i) {
      PeerReport &p = peers[i];
      if (p.state != PeerReport::kSilent)
        continue;
      const int groupRank = static_cast<int>(
          std::find(worldRanks_.begin(), worldRanks_.end(), p.worldRank) -
          worldRanks_.begin());
      const std::pair<std::string, PeerReport::State> probes[] = {
          {deadKey(p.worldRank), PeerReport::kDead},
          {absl::StrCat(prefix_, "abort/", groupRank), PeerReport::kAborted},
          {leftKey(p.worldRank), PeerReport::kLeft}};
      for (const auto &[key, state] : probes) {
        absl::StatusOr<std::string> v = store.fetch(key, ms(0));
        if (v.ok()) {
          p = {p.worldRank, state, *v};
          break;
        }
        if (v.status().code() != absl::StatusCode::kDeadlineExceeded) {
          storeLost = true;
          break;
        }
      }
      pending = pending || p.state == PeerReport::kSilent;
    }
    if (!pending || Clock::now() > deadline)
      break;
    std::this_thread::sleep_for(ms(20));
  }
  if (!storeLost)
    storeLost = !probeHeartbeats(store, world_->selfInfo, peers);
  storeLost = storeLost && world_->worldRank != 0;
  const std::string msg = absl::StrFormat(
      "rank %d (NCCL, GPU %d): %s", world_->worldRank, world_->device,
      composeFailure(
          op, storeLost, world_->master, timeout, timedOut ? "Timed out" : raw,
          peers,
          storeLost ? masterStalled(store, world_->leadInfo, world_->selfInfo)
                    : std::string()));
  const bool anyDead =
      storeLost || std::any_of(peers.begin(), peers.end(), [](auto &p) {
        return p.state == PeerReport::kDead;
      });
  if (anyDead)
    broken_ = absl::UnavailableError(msg);
  else if (timedOut)
    broken_ = absl::DeadlineExceededError(msg);
  else
    broken_ = absl::AbortedError(msg);
  return broken_;
}

absl::Status
NcclCommunicator::checkCounts(const char *op, const char *what,
                              const std::vector<size_t> &counts) const {
  if (counts.size() != static_cast<size_t>(size()))
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s has %d entries for %d ranks (one count per rank)", op, what,
        counts.size(), size()));
  return absl::OkStatus();
}

absl::Status NcclCommunicator::checkPeer(const char *op, int peer) const {
  if (peer < 0 || peer >= size())
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: peer %d outside 0..%d", op, peer, size() - 1));
  return absl::OkStatus();
}

ncclResult_t NcclCommunicator::copySelf(void *dst, const void *src,
                                        size_t bytes) {
  if (bytes == 0 || dst == src)
    return ncclSuccess;
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                         world_->stream) == cudaSuccess
             ? ncclSuccess
             : ncclUnhandledCudaError;
}

absl::Status NcclCommunicator::allReduceSumT(void *buf, size_t n, ElemType t) {
  return guarded("allreduce", [&] {
    return ncclAllReduce(buf, buf, n, ncclType(t), ncclSum, comm_,
                         world_->stream);
  });
}

absl::Status NcclCommunicator::allGatherVT(const void *in, size_t inCount,
                                           void *out,
                                           const std::vector<size_t> &counts,
                                           ElemType t) {
  if (absl::Status s = checkCounts("allgatherv", "counts", counts); !s.ok())
    return s;
  if (inCount != counts[rank_])
    return absl::InvalidArgumentError(absl::StrFormat(
        "allgatherv: rank %d gives %d elements but counts[%d] is %d", rank_,
        inCount, rank_, counts[rank_]));
  // Rank r broadcasts its part straight into its place in everyone's out.
  return guarded("allgatherv", [&] {
    char *o = static_cast<char *>(out);
    ncclGroupStart();
    for (int r = 0; r < size(); ++r) {
      if (counts[r] > 0)
        ncclBroadcast(r == rank_ ? in : o, o, counts[r], ncclType(t), r, comm_,
                      world_->stream);
      o += counts[r] * elemSize(t);
    }
    return ncclGroupEnd();
  });
}

absl::Status
NcclCommunicator::reduceScatterV(const float *in, float *out,
                                 const std::vector<size_t> &counts) {
  if (absl::Status s = checkCounts("reduce_scatterv", "counts", counts);
      !s.ok())
    return s;
  // One reduction per chunk, rooted at the rank that keeps it.
  return guarded("reduce_scatterv", [&] {
    const float *chunk = in;
    ncclGroupStart();
    for (int r = 0; r < size(); ++r) {
      if (counts[r] > 0)
        ncclReduce(chunk, out, counts[r], ncclFloat32, ncclSum, r, comm_,
                   world_->stream);
      chunk += counts[r];
    }
    return ncclGroupEnd();
  });
}

absl::Status NcclCommunicator::allToAllVT(const void *in,
                                          const std::vector<size_t> &sendCounts,
                                          void *out,
                                          const std::vector<size_t> &recvCounts,
                                          ElemType t) {
  if (absl::Status s = checkCounts("alltoallv", "sendCounts", sendCounts);
      !s.ok())
    return s;
  if (absl::Status s = checkCounts("alltoallv", "recvCounts", recvCounts);
      !s.ok())
    return s;
  return guarded("alltoallv", [&] {
    const char *src = static_cast<const char *>(in);
    char *dst = static_cast<char *>(out);
    const size_t es = elemSize(t);
    ncclResult_t self = ncclSuccess;
    ncclGroupStart();
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) {
        self = copySelf(dst, src, std::min(sendCounts[r], recvCounts[r]) * es);
      } else {
        if (sendCounts[r] > 0)
          ncclSend(src, sendCounts[r], ncclType(t), r, comm_, world_->stream);
        if (recvCounts[r] > 0)
          ncclRecv(dst, recvCounts[r], ncclType(t), r, comm_, world_->stream);
      }
      src += sendCounts[r] * es;
      dst += recvCounts[r] * es;
    }
    ncclResult_t g = ncclGroupEnd();
    return self != ncclSuccess ? self : g;
  });
}

absl::Status NcclCommunicator::broadcastT(void *buf, size_t n, int root,
                                          ElemType t) {
  if (absl::Status s = checkPeer("broadcast", root); !s.ok())
    return s;
  return guarded("broadcast", [&] {
    return ncclBroadcast(buf, buf, n, ncclType(t), root, comm_, world_->stream);
  });
}

absl::Status NcclCommunicator::sendRecvT(const void *sendBuf, size_t sendN,
                                         int dst, void *recvBuf, size_t recvN,
                                         int src, uint32_t /*tag*/,
                                         ElemType t) {
  if (dst >= 0)
    if (absl::Status s = checkPeer("send", dst); !s.ok())
      return s;
  if (src >= 0)
    if (absl::Status s = checkPeer("recv", src); !s.ok())
      return s;
  if (dst == rank_ && src == rank_)
    return guarded("sendrecv", [&] {
      return copySelf(recvBuf, sendBuf, std::min(sendN, recvN) * elemSize(t));
    });
  if ((dst == rank_) != (src == rank_))
    return absl::InvalidArgumentError(absl::StrFormat(
        "sendrecv: rank %d cannot send to itself without receiving from "
        "itself (dst %d, src %d)",
        rank_, dst, src));
  return guarded(dst >= 0 ? (src >= 0 ? "sendrecv" : "send") : "recv", [&] {
    ncclGroupStart();
    if (dst >= 0)
      ncclSend(sendBuf, sendN, ncclType(t), dst, comm_, world_->stream);
    if (src >= 0)
      ncclRecv(recvBuf, recvN, ncclType(t), src, comm_, world_->stream);
    return ncclGroupEnd();
  });
}

absl::Status NcclCommunicator::barrier() {
  return guarded("barrier", [&] {
    return ncclAllReduce(flag_, flag_, 1, ncclInt32, ncclSum, comm_,
                         world_->stream);
  });
}

absl::StatusOr<std::unique_ptr<Communicator>>
NcclCommunicator::split(const std::vector<int> &ranks) {
  std::vector<int> members;
  for (int r : ranks) {
    if (r < 0 || r >= size() ||
        std::count(members.begin(), members.end(), worldRanks_[r]))
      return absl::InvalidArgumentError(
          absl::StrFormat("split: ranks [%s] must be distinct ranks of 0..%d",
                          absl::StrJoin(ranks, ","), size() - 1));
    members.push_back(worldRanks_[r]);
  }
  if (!std::count(ranks.begin(), ranks.end(), rank_))
    return absl::InvalidArgumentError(absl::StrFormat(
        "split: rank %d is not in [%s]; only members call split", rank_,
        absl::StrJoin(ranks, ",")));
  // Members split in the same order, so (member list, count) names the group.
  std::string list = absl::StrJoin(members, ",");
  int count;
  {
    std::lock_guard<std::mutex> lock(world_->mu);
    count = world_->splitCounts[list]++;
  }
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> c =
      create(world_, members, absl::StrCat("nccl/", list, "#", count, "/"));
  if (!c.ok())
    return c.status();
  return std::unique_ptr<Communicator>(std::move(*c));
}

} // namespace

int deviceForLocalRank(int localRank, int visibleDevices) {
  return visibleDevices > 0 ? localRank % visibleDevices : 0;
}

absl::StatusOr<std::unique_ptr<Communicator>>
connectNccl(const CommOptions &o, int device, void *stream) {
  if (o.world < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("world size %d must be at least 1", o.world));
  if (o.rank < 0 || o.rank >= o.world)
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank %d is out of range for world size %d (ranks are 0..%d)", o.rank,
        o.world, o.world - 1));
  if (o.timeout.count() <= 0)
    return absl::InvalidArgumentError("communicator timeout must be positive");
  const bool alone = o.world == 1; // no well-known port needed
  const std::string host = alone ? "127.0.0.1" : o.masterHost;
  const int port = alone ? 0 : o.masterPort;
  if (!alone && (port <= 0 || port > 65535))
    return absl::InvalidArgumentError(absl::StrFormat(
        "master port %d is not a TCP port (1..65535); pass --master HOST:PORT",
        port));
  // The store's sockets must not kill the process when a peer dies.
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);

  auto world = std::make_shared<NcclWorld>();
  world->timeout = o.timeout;
  world->worldRank = o.rank;
  world->worldSize = o.world;
  world->device = device;
  world->stream = static_cast<cudaStream_t>(stream);
  world->selfInfo = absl::StrFormat("GPU %d, pid %d", device, getpid());
  CommOptions ro = o;
  ro.masterHost = host;
  ro.masterPort = port;
  absl::StatusOr<Rendezvous> rv = joinRendezvous(ro, world->selfInfo);
  if (!rv.ok())
    return rv.status();
  static_cast<Rendezvous &>(*world) = std::move(*rv);
  std::vector<int> all(o.world);
  for (int r = 0; r < o.world; ++r)
    all[r] = r;
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> c =
      NcclCommunicator::create(world, all, "nccl/world/");
  if (!c.ok())
    return c.status();
  return std::unique_ptr<Communicator>(std::move(*c));
}

} // namespace galaxy::comm
