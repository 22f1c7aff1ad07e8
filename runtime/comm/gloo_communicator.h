// Communicator over Gloo's TCP transport (CPU tensors).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gloo/rendezvous/context.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/gloo_world.h"

namespace galaxy::comm {

class GlooCommunicator : public Communicator {
public:
  // Rendezvous of one group: the members (world ranks, in group-rank order)
  // publish under `prefix` in the store and Gloo connects every pair.
  static absl::StatusOr<std::unique_ptr<GlooCommunicator>>
  create(std::shared_ptr<GlooWorld> world, std::vector<int> worldRanks,
         const std::string &prefix);

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
  GlooCommunicator(std::shared_ptr<GlooWorld> world,
                   std::vector<int> worldRanks, int rank, std::string prefix,
                   std::shared_ptr<gloo::rendezvous::Context> ctx);

  // Runs a Gloo call, turning its exceptions into a diagnosed Status; after a
  // failure the communicator stays broken (Gloo's pairs are closed).
  static absl::Status checkPairs(const GlooWorld &world,
                                 gloo::rendezvous::Context &ctx,
                                 const std::vector<int> &worldRanks, int rank,
                                 const std::string &prefix);
  template <typename F> absl::Status guarded(const char *op, F &&body);
  absl::Status fail(const char *op, const std::string &raw);
  absl::Status checkCounts(const char *op, const char *what,
                           const std::vector<size_t> &counts) const;
  absl::Status checkPeer(const char *op, int peer) const;
  void ringReduceScatter(const float *in, float *out,
                         const std::vector<size_t> &counts);

  std::shared_ptr<GlooWorld> world_;
  std::vector<int> worldRanks_;
  int rank_;
  std::string prefix_;
  std::shared_ptr<gloo::rendezvous::Context> ctx_;
  absl::Status broken_;
  std::vector<float> scratch_; // reduce-scatter staging, reused across calls
};

} // namespace galaxy::comm
