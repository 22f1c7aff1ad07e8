#include "runtime/comm/gloo_communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gloo/allgatherv.h"
#include "gloo/allreduce.h"
#include "gloo/alltoallv.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/math.h"
#include "gloo/rendezvous/prefix_store.h"
#include "gloo/transport/unbound_buffer.h"
#include "runtime/comm/failure_report.h"
#include "runtime/comm/heartbeat.h"
#include "runtime/comm/job_token.h"
#include "runtime/comm/rendezvous.h"
#include "runtime/comm/sha256.h"

namespace galaxy::comm {
namespace {

using ms = std::chrono::milliseconds;

// Slot prefixes above Gloo's own (0x01..0x08), so our point-to-point traffic
// never matches a Gloo collective's messages.
constexpr uint64_t kP2PSlot = uint64_t(0x20) << 56;
constexpr uint64_t kRingSlot = uint64_t(0x21) << 56;
constexpr uint64_t kPairSlot = uint64_t(0x22) << 56;

std::string groupName(const std::vector<int> &worldRanks,
                      const std::string &prefix) {
  if (prefix == "world/")
    return absl::StrFormat("the world of %d ranks", worldRanks.size());
  return absl::StrCat("split group [", absl::StrJoin(worldRanks, ","), "]");
}

gloo::AllreduceOptions::Func sumFunc(ElemType t) {
  using Fn = void (*)(void *, const void *, const void *, size_t);
  return t == ElemType::kF32 ? static_cast<Fn>(&gloo::sum<float>)
                             : static_cast<Fn>(&gloo::sum<int32_t>);
}

std::vector<int64_t> toInt64(const std::vector<size_t> &v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

void waitOrThrow(gloo::transport::UnboundBuffer &buf, bool isSend, ms timeout) {
  bool ok = isSend ? buf.waitSend(timeout) : buf.waitRecv(timeout);
  if (!ok)
    throw std::runtime_error(isSend ? "send aborted" : "recv aborted");
}

} // namespace

GlooWorld::~GlooWorld() {
  if (!store || worldSize == 1)
    return;
  (void)store->put(leftKey(worldRank), selfInfo);
  if (worldRank != 0 || !failed)
    return;
  // After a failure the survivors still need the store (hosted here) to
  // find out who was lost: wait, bounded, until every rank died or left.
  const auto deadline =
      std::chrono::steady_clock::now() + std::min(timeout, ms(5000));
  for (int r = 1; r < worldSize; ++r) {
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<std::vector<std::string>> m =
          store->missing({deadKey(r), leftKey(r)}, ms(0));
      if (!m.ok() || m->size() < 2)
        break;
      std::this_thread::sleep_for(ms(20));
    }
  }
}

absl::StatusOr<std::unique_ptr<GlooCommunicator>>
GlooCommunicator::create(std::shared_ptr<GlooWorld> world,
                         std::vector<int> worldRanks,
                         const std::string &prefix) {
  const int n = static_cast<int>(worldRanks.size());
  auto me = std::find(worldRanks.begin(), worldRanks.end(), world->worldRank);
  const int rank = static_cast<int>(me - worldRanks.begin());
  TcpStore &store = *world->store;
  const std::string group = groupName(worldRanks, prefix);

  // Join first, so a missing rank gets a message naming it rather than
  // Gloo's generic connect timeout, and so mismatched sizes are caught.
  const std::string sizeTag = absl::StrCat(n);
  if (absl::Status s = store.put(absl::StrCat(prefix, "join/", rank), sizeTag);
      !s.ok())
    return s;
  std::vector<std::string> keys;
  for (int r = 0; r < n; ++r)
    keys.push_back(absl::StrCat(prefix, "join/", r));
  absl::StatusOr<std::vector<std::string>> missing =
      store.missing(keys, world->timeout);
  if (!missing.ok())
    return missing.status();
  if (!missing->empty()) {
    std::vector<int> absent;
    for (int r = 0; r < n; ++r)
      if (std::count(missing->begin(), missing->end(), keys[r]))
        absent.push_back(worldRanks[r]);
    // A process that tried to join as a missing rank and was refused (wrong
    // plan, flags) explains the wait better than "not started".
    std::string refused;
    for (int r : absent)
      if (absl::StatusOr<std::string> why = store.fetch(refusedKey(r), ms(0));
          why.ok())
        absl::StrAppend(&refused, "; a process claiming rank ", r,
                        " was refused: ", *why);
    return absl::DeadlineExceededError(absl::StrFormat(
        "rank(s) %s did not join %s at master %s within %s (were they "
        "started, with the same --master, world size and job token?)%s",
        absl::StrJoin(absent, ", "), group, world->master,
        formatDuration(world->timeout), refused));
  }
  absl::StatusOr<std::string> first = store.fetch(keys[0], ms(0));
  if (!first.ok())
    return first.status();
  if (*first != sizeTag)
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank %d was started with world size %s but rank %d with %s: every "
        "rank needs the same world size",
        world->worldRank, sizeTag, worldRanks[0], *first));

  auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, n);
  ctx->setTimeout(world->timeout);
  try {
    gloo::rendezvous::PrefixStore pairStore(prefix + "gloo", store);
    ctx->connectFullMesh(pairStore, world->device);
  } catch (const std::exception &e) {
    return absl::UnavailableError(absl::StrFormat(
        "connecting the ranks of %s failed: %s", group, e.what()));
  }
  if (absl::Status s = checkPairs(*world, *ctx, worldRanks, rank, prefix);
      !s.ok())
    return s;
  return std::unique_ptr<GlooCommunicator>(new GlooCommunicator(
      std::move(world), std::move(worldRanks), rank, prefix, std::move(ctx)));
}

// Gloo's TCP pairs carry no credentials: its listener hands an accepted
// socket to whichever pair the first 8 bytes (a sequence number) name. So
// each pair proves the job token over its own connection before any data
// flows: rank a sends b HMAC(token, nonce | prefix | a | b), b checks it. A
// process that raced a rank to a listener cannot answer; the nonce, fresh
// per group and only in the (authenticated) store, stops replays.
absl::Status GlooCommunicator::checkPairs(const GlooWorld &world,
                                          gloo::rendezvous::Context &ctx,
                                          const std::vector<int> &worldRanks,
                                          int rank, const std::string &prefix) {
  const int n = static_cast<int>(worldRanks.size());
  if (n == 1)
    return absl::OkStatus();
  TcpStore &store = *world.store;
  const std::string nonceKey = absl::StrCat(prefix, "pair_nonce");
  std::string nonce;
  if (rank == 0) {
    absl::StatusOr<std::string> b = randomBytes(32);
    if (!b.ok())
      return b.status();
    nonce = *b;
    if (absl::Status s = store.put(nonceKey, nonce); !s.ok())
      return s;
  } else {
    absl::StatusOr<std::string> v = store.fetch(nonceKey, world.timeout);
    if (!v.ok())
      return v.status();
    nonce = *v;
  }
  auto proof = [&](int from, int to) {
    return crypto::hmacSha256(
        world.token, absl::StrCat("gloo-pair|", nonce, "|", prefix, "|",
                                  worldRanks[from], "|", worldRanks[to]));
  };
  // Test hook: this rank sends wrong proofs, as a process that took a
  // pair's place would (tests/comm/faults_test.cpp).
  const bool corrupt = std::getenv("GALAXY_TEST_BAD_PAIR_PROOF") != nullptr;
  std::vector<crypto::Digest> out(n), in(n);
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> sends, recvs;
  try {
    for (int p = 0; p < n; ++p) {
      if (p == rank)
        continue;
      out[p] = proof(rank, p);
      if (corrupt)
        out[p][0] ^= 1;
      sends.push_back(ctx.createUnboundBuffer(out[p].data(), out[p].size()));
      sends.back()->send(p, kPairSlot);
      recvs.push_back(ctx.createUnboundBuffer(in[p].data(), in[p].size()));
      recvs.back()->recv(p, kPairSlot);
    }
    for (auto &r : recvs)
      waitOrThrow(*r, false, world.timeout);
    for (auto &w : sends)
      waitOrThrow(*w, true, world.timeout);
  } catch (const std::exception &e) {
    return absl::UnavailableError(absl::StrFormat(
        "rank %d: checking the job token over the Gloo connections failed: %s",
        world.worldRank, e.what()));
  }
  for (int p = 0; p < n; ++p)
    if (p != rank &&
        !crypto::constantTimeEqual(crypto::asBytes(in[p]),
                                   crypto::asBytes(proof(p, rank))))
      return absl::PermissionDeniedError(absl::StrFormat(
          "rank %d: the Gloo connection from rank %d did not prove the job "
          "token (another process took that connection's place?); refusing "
          "to exchange data over it",
          world.worldRank, worldRanks[p]));
  return absl::OkStatus();
}

GlooCommunicator::GlooCommunicator(
    std::shared_ptr<GlooWorld> world, std::vector<int> worldRanks, int rank,
    std::string prefix, std::shared_ptr<gloo::rendezvous::Context> ctx)
    : world_(std::move(world)), worldRanks_(std::move(worldRanks)), rank_(rank),
      prefix_(std::move(prefix)), ctx_(std::move(ctx)) {}

template <typename F>
absl::Status GlooCommunicator::guarded(const char *op, F &&body) {
  if (!broken_.ok())
    return absl::FailedPreconditionError(
        absl::StrCat(op, " on a communicator that already failed (",
                     broken_.message(), "); restart the ranks to recover"));
  try {
    body();
    return absl::OkStatus();
  } catch (const std::exception &e) {
    return fail(op, e.what());
  }
}

absl::Status GlooCommunicator::fail(const char *op, const std::string &raw) {
  TcpStore &store = *world_->store;
  const ms timeout = world_->timeout;
  world_->failed = true;
  std::string reason = isTimeoutMessage(raw)
                           ? absl::StrCat("timed out after ",
                                          formatDuration(timeout), " in ", op)
                           : absl::StrCat(op, ": ", raw);
  // Publish before closing: peers that see our connections drop can then
  // tell we are alive and why we stopped.
  bool storeLost =
      !store.put(absl::StrCat(prefix_, "abort/", rank_), reason).ok();
  try {
    ctx_->closeConnections();
  } catch (const std::exception &) {
  }

  std::vector<PeerReport> peers;
  for (int r = 0; r < size(); ++r)
    if (r != rank_)
      peers.push_back({worldRanks_[r], PeerReport::kSilent, ""});
  // Dead markers and aborts appear within milliseconds; only a stalled peer
  // makes us wait the whole grace period.
  const ms grace = std::clamp(timeout / 10, ms(200), ms(3000));
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!storeLost) {
    bool pending = false, anyDead = false;
    for (size_t i = 0; i < peers.size() && !storeLost; ++i) {
      PeerReport &p = peers[i];
      if (p.state != PeerReport::kSilent)
        continue;
      const int groupRank = static_cast<int>(
          std::find(worldRanks_.begin(), worldRanks_.end(), p.worldRank) -
          worldRanks_.begin());
      const std::string dead = deadKey(p.worldRank);
      const std::string abort = absl::StrCat(prefix_, "abort/", groupRank);
      // A crash explains more than an abort, an abort more than a leave.
      const std::pair<std::string, PeerReport::State> probes[] = {
          {dead, PeerReport::kDead},
          {abort, PeerReport::kAborted},
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
      anyDead = anyDead || p.state == PeerReport::kDead;
    }
    if (!pending || anyDead || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(ms(20));
  }
  if (!storeLost)
    storeLost = !probeHeartbeats(store, world_->selfInfo, peers);
  // Rank 0 hosts the store in-process, so for rank 0 a lost store can't mean
  // rank 0 died.
  storeLost = storeLost && world_->worldRank != 0;
  std::string msg = absl::StrFormat(
      "rank %d: %s", world_->worldRank,
      composeFailure(
          op, storeLost, world_->master, timeout, raw, peers,
          storeLost ? masterStalled(store, world_->leadInfo, world_->selfInfo)
                    : std::string()));
  bool anyDead =
      storeLost || std::any_of(peers.begin(), peers.end(), [](auto &p) {
        return p.state == PeerReport::kDead;
      });
  if (anyDead)
    broken_ = absl::UnavailableError(msg);
  else if (isTimeoutMessage(raw) || absl::StrContains(msg, "timed out"))
    broken_ = absl::DeadlineExceededError(msg);
  else
    broken_ = absl::AbortedError(msg);
  return broken_;
}

absl::Status
GlooCommunicator::checkCounts(const char *op, const char *what,
                              const std::vector<size_t> &counts) const {
  if (counts.size() != static_cast<size_t>(size()))
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s has %d entries but the communicator has %d ranks (one count "
        "per rank)",
        op, what, counts.size(), size()));
  return absl::OkStatus();
}

absl::Status GlooCommunicator::checkPeer(const char *op, int peer) const {
  if (peer < 0 || peer >= size() || peer == rank_)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: peer %d is not another rank of this communicator (rank %d of %d)",
        op, peer, rank_, size()));
  return absl::OkStatus();
}

absl::Status GlooCommunicator::allReduceSumT(void *buf, size_t n, ElemType t) {
  if (n == 0 || size() == 1)
    return guarded("allreduce", [] {});
  return guarded("allreduce", [&] {
    gloo::AllreduceOptions opts(ctx_);
    if (t == ElemType::kF32)
      opts.setOutput(static_cast<float *>(buf), n);
    else
      opts.setOutput(static_cast<int32_t *>(buf), n);
    opts.setReduceFunction(sumFunc(t));
    gloo::allreduce(opts);
  });
}

absl::Status GlooCommunicator::allGatherVT(const void *in, size_t inCount,
                                           void *out,
                                           const std::vector<size_t> &counts,
                                           ElemType t) {
  if (absl::Status s = checkCounts("allgatherv", "counts", counts); !s.ok())
    return s;
  if (inCount != counts[rank_])
    return absl::InvalidArgumentError(absl::StrFormat(
        "allgatherv: rank %d passes %d input elements but counts[%d] = %d",
        rank_, inCount, rank_, counts[rank_]));
  size_t total = 0;
  for (size_t c : counts)
    total += c;
  if (total == 0)
    return guarded("allgatherv", [] {});
  return guarded("allgatherv", [&] {
    gloo::AllgathervOptions opts(ctx_);
    // Gloo's input pointer is not written to; its API just isn't const.
    if (t == ElemType::kF32) {
      opts.setInput(const_cast<float *>(static_cast<const float *>(in)),
                    inCount);
      opts.setOutput(static_cast<float *>(out), counts);
    } else {
      opts.setInput(const_cast<int32_t *>(static_cast<const int32_t *>(in)),
                    inCount);
      opts.setOutput(static_cast<int32_t *>(out), counts);
    }
    gloo::allgatherv(opts);
  });
}

absl::Status GlooCommunicator::allToAllVT(const void *in,
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
  if (sendCounts[rank_] != recvCounts[rank_])
    return absl::InvalidArgumentError(absl::StrFormat(
        "alltoallv: rank %d sends itself %d elements but expects %d", rank_,
        sendCounts[rank_], recvCounts[rank_]));
  return guarded("alltoallv", [&] {
    gloo::AlltoallvOptions opts(ctx_);
    if (t == ElemType::kF32) {
      opts.setInput(const_cast<float *>(static_cast<const float *>(in)),
                    toInt64(sendCounts));
      opts.setOutput(static_cast<float *>(out), toInt64(recvCounts));
    } else {
      opts.setInput(const_cast<int32_t *>(static_cast<const int32_t *>(in)),
                    toInt64(sendCounts));
      opts.setOutput(static_cast<int32_t *>(out), toInt64(recvCounts));
    }
    gloo::alltoallv(opts);
  });
}

absl::Status GlooCommunicator::broadcastT(void *buf, size_t n, int root,
                                          ElemType t) {
  if (root < 0 || root >= size())
    return absl::InvalidArgumentError(absl::StrFormat(
        "broadcast: root %d is not a rank of this communicator (size %d)", root,
        size()));
  if (n == 0 || size() == 1)
    return guarded("broadcast", [] {});
  return guarded("broadcast", [&] {
    gloo::BroadcastOptions opts(ctx_);
    if (t == ElemType::kF32)
      opts.setOutput(static_cast<float *>(buf), n);
    else
      opts.setOutput(static_cast<int32_t *>(buf), n);
    opts.setRoot(root);
    gloo::broadcast(opts);
  });
}

absl::Status GlooCommunicator::barrier() {
  if (size() == 1)
    return guarded("barrier", [] {});
  return guarded("barrier", [&] {
    gloo::BarrierOptions opts(ctx_);
    gloo::barrier(opts);
  });
}

absl::Status GlooCommunicator::sendRecvT(const void *sendBuf, size_t sendN,
                                         int dst, void *recvBuf, size_t recvN,
                                         int src, uint32_t tag, ElemType t) {
  const char *op = dst >= 0 && src >= 0 ? "sendrecv"
                   : dst >= 0           ? "send"
                                        : "recv";
  if (dst >= 0)
    if (absl::Status s = checkPeer(op, dst); !s.ok())
      return s;
  if (src >= 0)
    if (absl::Status s = checkPeer(op, src); !s.ok())
      return s;
  const size_t es = elemSize(t);
  return guarded(op, [&] {
    const uint64_t slot = kP2PSlot | tag;
    std::unique_ptr<gloo::transport::UnboundBuffer> s, r;
    if (dst >= 0 && sendN > 0) {
      s = ctx_->createUnboundBuffer(const_cast<void *>(sendBuf), sendN * es);
      s->send(dst, slot);
    }
    if (src >= 0 && recvN > 0) {
      r = ctx_->createUnboundBuffer(recvBuf, recvN * es);
      r->recv(src, slot);
    }
    if (r)
      waitOrThrow(*r, false, ctx_->getTimeout());
    if (s)
      waitOrThrow(*s, true, ctx_->getTimeout());
  });
}

// Ring reduce-scatter with uneven chunks: at step s rank r passes its partial
// sum of chunk r-s-1 to r+1 and adds the partial of chunk r-s-2 from r-1;
// after size-1 steps it holds chunk r summed over all ranks. Each rank sends
// (size-1)/size of the data once — half an all-reduce's traffic.
void GlooCommunicator::ringReduceScatter(const float *in, float *out,
                                         const std::vector<size_t> &counts) {
  const int n = size();
  std::vector<size_t> off(n + 1, 0);
  size_t maxCount = 0;
  for (int r = 0; r < n; ++r) {
    off[r + 1] = off[r] + counts[r];
    maxCount = std::max(maxCount, counts[r]);
  }
  scratch_.resize(2 * maxCount);
  float *cur = scratch_.data();            // partial sum we send next
  float *tmp = scratch_.data() + maxCount; // partial sum received
  const int next = (rank_ + 1) % n, prev = (rank_ + n - 1) % n;
  const ms timeout = ctx_->getTimeout();
  for (int s = 0; s + 1 < n; ++s) {
    const int sendChunk = ((rank_ - s - 1) % n + n) % n;
    const int recvChunk = ((rank_ - s - 2) % n + n) % n;
    const float *sendPtr = s == 0 ? in + off[sendChunk] : cur;
    const uint64_t slot = kRingSlot | static_cast<uint64_t>(s);
    std::unique_ptr<gloo::transport::UnboundBuffer> sb, rb;
    if (counts[recvChunk] > 0) {
      rb = ctx_->createUnboundBuffer(tmp, counts[recvChunk] * sizeof(float));
      rb->recv(prev, slot);
    }
    if (counts[sendChunk] > 0) {
      sb = ctx_->createUnboundBuffer(const_cast<float *>(sendPtr),
                                     counts[sendChunk] * sizeof(float));
      sb->send(next, slot);
    }
    if (rb)
      waitOrThrow(*rb, false, timeout);
    if (sb)
      waitOrThrow(*sb, true, timeout);
    float *dst = s + 2 == n ? out : cur; // last step: recvChunk == rank_
    const float *mine = in + off[recvChunk];
    for (size_t i = 0; i < counts[recvChunk]; ++i)
      dst[i] = mine[i] + tmp[i];
  }
}

absl::Status
GlooCommunicator::reduceScatterV(const float *in, float *out,
                                 const std::vector<size_t> &counts) {
  if (absl::Status s = checkCounts("reducescatterv", "counts", counts); !s.ok())
    return s;
  if (size() == 1) {
    std::memcpy(out, in, counts[0] * sizeof(float));
    return guarded("reducescatterv", [] {});
  }
  return guarded("reducescatterv", [&] { ringReduceScatter(in, out, counts); });
}

absl::StatusOr<std::unique_ptr<Communicator>>
GlooCommunicator::split(const std::vector<int> &ranks) {
  if (!broken_.ok())
    return absl::FailedPreconditionError(absl::StrCat(
        "split on a communicator that already failed: ", broken_.message()));
  std::set<int> seen;
  for (int r : ranks) {
    if (r < 0 || r >= size() || !seen.insert(r).second)
      return absl::InvalidArgumentError(absl::StrFormat(
          "split([%s]): ranks must be distinct ranks of this communicator "
          "(0..%d)",
          absl::StrJoin(ranks, ","), size() - 1));
  }
  if (!seen.count(rank_))
    return absl::InvalidArgumentError(absl::StrFormat(
        "split([%s]) called on rank %d, which is not a member; only the "
        "members call split",
        absl::StrJoin(ranks, ","), rank_));
  std::vector<int> members;
  for (int r : ranks)
    members.push_back(worldRanks_[r]);
  std::string key = absl::StrJoin(members, ",");
  int count;
  {
    std::lock_guard<std::mutex> lock(world_->mu);
    count = world_->splitCounts[key]++;
  }
  absl::StatusOr<std::unique_ptr<GlooCommunicator>> c = create(
      world_, std::move(members), absl::StrCat("split/", key, "/", count, "/"));
  if (!c.ok())
    return c.status();
  return std::unique_ptr<Communicator>(std::move(*c));
}

} // namespace galaxy::comm
