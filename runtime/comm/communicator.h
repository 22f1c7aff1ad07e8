// The device-independent collective interface the runtime calls. Every
// operation is collective over the communicator's ranks (except send/recv),
// takes per-rank counts where the collective allows uneven parts, and returns
// an error — never hangs — when a peer dies or stalls past the timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/comm/join_facts.h"

namespace galaxy::comm {

enum class ElemType { kF32, kI32 };

inline size_t elemSize(ElemType) { return 4; }

class Communicator {
public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0; // rank within this communicator
  virtual int size() const = 0;
  // Rank in the world communicator this one was split from (for messages).
  virtual int worldRank(int rank) const = 0;

  // buf[i] = sum over ranks of buf[i].
  absl::Status allReduceSum(float *buf, size_t n) {
    return allReduceSumT(buf, n, ElemType::kF32);
  }
  absl::Status allReduceSum(int32_t *buf, size_t n) {
    return allReduceSumT(buf, n, ElemType::kI32);
  }

  // out = concatenation over ranks r of rank r's input (counts[r] elements);
  // inCount must equal counts[rank()].
  absl::Status allGatherV(const float *in, size_t inCount, float *out,
                          const std::vector<size_t> &counts) {
    return allGatherVT(in, inCount, out, counts, ElemType::kF32);
  }
  absl::Status allGatherV(const int32_t *in, size_t inCount, int32_t *out,
                          const std::vector<size_t> &counts) {
    return allGatherVT(in, inCount, out, counts, ElemType::kI32);
  }

  // in holds sum(counts) elements on every rank; out (counts[rank()]
  // elements) = the rank()-th chunk of the sum over ranks of in.
  virtual absl::Status reduceScatterV(const float *in, float *out,
                                      const std::vector<size_t> &counts) = 0;

  // in = chunks for ranks 0..size-1 (sendCounts[r] elements each); out =
  // chunks from ranks 0..size-1 (recvCounts[r] each). recvCounts[r] must equal
  // rank r's sendCounts[rank()].
  absl::Status allToAllV(const float *in, const std::vector<size_t> &sendCounts,
                         float *out, const std::vector<size_t> &recvCounts) {
    return allToAllVT(in, sendCounts, out, recvCounts, ElemType::kF32);
  }

  // Copies root's buf to every rank's buf.
  absl::Status broadcast(float *buf, size_t n, int root) {
    return broadcastT(buf, n, root, ElemType::kF32);
  }
  absl::Status broadcast(int32_t *buf, size_t n, int root) {
    return broadcastT(buf, n, root, ElemType::kI32);
  }

  // Point to point; messages between a pair with equal tags arrive in order.
  // send returns once the peer has received (it blocks until the matching
  // recv is posted): use sendRecv when two ranks exchange at the same time.
  absl::Status send(const float *buf, size_t n, int peer, uint32_t tag) {
    return sendRecvT(buf, n, peer, nullptr, 0, -1, tag, ElemType::kF32);
  }
  absl::Status recv(float *buf, size_t n, int peer, uint32_t tag) {
    return sendRecvT(nullptr, 0, -1, buf, n, peer, tag, ElemType::kF32);
  }
  absl::Status send(const int32_t *buf, size_t n, int peer, uint32_t tag) {
    return sendRecvT(buf, n, peer, nullptr, 0, -1, tag, ElemType::kI32);
  }
  absl::Status recv(int32_t *buf, size_t n, int peer, uint32_t tag) {
    return sendRecvT(nullptr, 0, -1, buf, n, peer, tag, ElemType::kI32);
  }
  // Sends to dst and receives from src concurrently (dst/src may be equal).
  absl::Status sendRecv(const float *sendBuf, size_t sendN, int dst,
                        float *recvBuf, size_t recvN, int src, uint32_t tag) {
    return sendRecvT(sendBuf, sendN, dst, recvBuf, recvN, src, tag,
                     ElemType::kF32);
  }

  virtual absl::Status barrier() = 0;

  // A communicator over `ranks` (ranks of this communicator; the new rank of
  // ranks[i] is i). Called by exactly the members, in the same order of
  // split calls; non-members get InvalidArgument.
  virtual absl::StatusOr<std::unique_ptr<Communicator>>
  split(const std::vector<int> &ranks) = 0;

protected:
  virtual absl::Status allReduceSumT(void *buf, size_t n, ElemType t) = 0;
  virtual absl::Status allGatherVT(const void *in, size_t inCount, void *out,
                                   const std::vector<size_t> &counts,
                                   ElemType t) = 0;
  virtual absl::Status
  allToAllVT(const void *in, const std::vector<size_t> &sendCounts, void *out,
             const std::vector<size_t> &recvCounts, ElemType t) = 0;
  virtual absl::Status broadcastT(void *buf, size_t n, int root,
                                  ElemType t) = 0;
  // dst < 0: receive only; src < 0: send only.
  virtual absl::Status sendRecvT(const void *sendBuf, size_t sendN, int dst,
                                 void *recvBuf, size_t recvN, int src,
                                 uint32_t tag, ElemType t) = 0;
};

struct CommOptions {
  int rank = 0;
  int world = 1;
  std::string masterHost = "127.0.0.1";
  int masterPort = 23000;
  // Bounds rendezvous and every operation: a lost or stalled peer turns into
  // an error within this time.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  // Address this rank's Gloo listeners bind to; empty = the local address
  // that routes to masterHost (127.0.0.1 for a loopback master).
  std::string localHost;
  // Network interface for Gloo instead of localHost (e.g. "eth0").
  std::string iface;
  // The job token every store connection proves it knows (job_token.h);
  // "" = none: any process that reaches the master port can join.
  std::string token;
  // What this rank must agree on with rank 0 (join_facts.h); a rank whose
  // facts differ is refused when it joins, naming each difference.
  JoinFacts facts;
  // When set, filled with rank 0's facts (its `fromLead` choices included).
  JoinFacts *leadFacts = nullptr;
};

// Joins the group: rank 0 hosts the rendezvous store on masterHost:masterPort,
// the others connect to it (retrying until the timeout) and claim their rank
// (rendezvous.h), then Gloo connects every pair over TCP and each pair proves
// the job token over its own connection.
absl::StatusOr<std::unique_ptr<Communicator>>
connectGloo(const CommOptions &options);

} // namespace galaxy::comm
