// The NCCL communicator on device buffers: two ranks (forked processes, one
// GPU each) where two GPUs exist, else a one-rank sanity run. The parent never
// initialises CUDA, so it may fork. Skipped, with the reason, without a GPU.
#include <chrono>
#include <numeric>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/cuda/nccl_communicator.h"
#include "tests/comm/multiprocess.h"
#include "tests/cuda/gpu_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::comm {
namespace {

// A device copy of host values, freed on scope exit.
class DeviceVec {
public:
  explicit DeviceVec(const std::vector<float> &v) : n_(v.size()) {
    cudaMalloc(&p_, std::max<size_t>(n_, 1) * sizeof(float));
    cudaMemcpy(p_, v.data(), n_ * sizeof(float), cudaMemcpyHostToDevice);
  }
  explicit DeviceVec(size_t n) : DeviceVec(std::vector<float>(n, -1.f)) {}
  ~DeviceVec() { cudaFree(p_); }
  float *get() { return static_cast<float *>(p_); }
  std::vector<float> host() const {
    std::vector<float> v(n_);
    cudaMemcpy(v.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost);
    return v;
  }

private:
  void *p_ = nullptr;
  size_t n_;
};

absl::Status expectEq(const std::vector<float> &got,
                      const std::vector<float> &want, const std::string &what) {
  if (got == want)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": got [",
                                          absl::StrJoin(got, ","), "], want [",
                                          absl::StrJoin(want, ","), "]"));
}

// Rank r holds values 100·r + i; counts are uneven ({3, 5} for two ranks).
absl::Status exercise(Communicator &c) {
  const int r = c.rank(), w = c.size();
  std::vector<size_t> counts;
  for (int k = 0; k < w; ++k)
    counts.push_back(3 + 2 * k);
  const size_t total = std::accumulate(counts.begin(), counts.end(), size_t{0});
  auto mine = [&](size_t n, int rank) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = 100.f * rank + i;
    return v;
  };

  { // all-reduce: Σ_k (100k + i)
    DeviceVec buf(mine(6, r));
    if (absl::Status s = c.allReduceSum(buf.get(), 6); !s.ok())
      return s;
    std::vector<float> want(6, 0.f);
    for (int k = 0; k < w; ++k)
      for (size_t i = 0; i < 6; ++i)
        want[i] += 100.f * k + i;
    if (absl::Status s = expectEq(buf.host(), want, "allReduceSum"); !s.ok())
      return s;
  }
  { // uneven all-gather: rank k's counts[k] values, in rank order
    DeviceVec in(mine(counts[r], r)), out(total);
    if (absl::Status s = c.allGatherV(in.get(), counts[r], out.get(), counts);
        !s.ok())
      return s;
    std::vector<float> want;
    for (int k = 0; k < w; ++k) {
      std::vector<float> part = mine(counts[k], k);
      want.insert(want.end(), part.begin(), part.end());
    }
    if (absl::Status s = expectEq(out.host(), want, "allGatherV"); !s.ok())
      return s;
  }
  { // uneven reduce-scatter: my chunk of Σ_k (100k + i)
    DeviceVec in(mine(total, r)), out(counts[r]);
    if (absl::Status s = c.reduceScatterV(in.get(), out.get(), counts); !s.ok())
      return s;
    size_t off = 0;
    for (int k = 0; k < r; ++k)
      off += counts[k];
    std::vector<float> want(counts[r], 0.f);
    for (int k = 0; k < w; ++k)
      for (size_t i = 0; i < counts[r]; ++i)
        want[i] += 100.f * k + off + i;
    if (absl::Status s = expectEq(out.host(), want, "reduceScatterV"); !s.ok())
      return s;
  }
  { // broadcast from the last rank
    DeviceVec buf(mine(4, r));
    if (absl::Status s = c.broadcast(buf.get(), 4, w - 1); !s.ok())
      return s;
    if (absl::Status s = expectEq(buf.host(), mine(4, w - 1), "broadcast");
        !s.ok())
      return s;
  }
  { // all-to-all with uneven parts: rank r sends (r + k + 1) values to k
    std::vector<size_t> send(w), recv(w);
    std::vector<float> in, want;
    for (int k = 0; k < w; ++k) {
      send[k] = r + k + 1;
      recv[k] = k + r + 1;
      for (size_t i = 0; i < send[k]; ++i)
        in.push_back(1000.f * r + 10.f * k + i);
      for (size_t i = 0; i < recv[k]; ++i)
        want.push_back(1000.f * k + 10.f * r + i);
    }
    DeviceVec din(in), dout(want.size());
    if (absl::Status s = c.allToAllV(din.get(), send, dout.get(), recv);
        !s.ok())
      return s;
    if (absl::Status s = expectEq(dout.host(), want, "allToAllV"); !s.ok())
      return s;
  }
  if (w > 1) { // ring exchange
    DeviceVec out(5), in(mine(5, r));
    const int next = (r + 1) % w, prev = (r + w - 1) % w;
    if (absl::Status s = c.sendRecv(in.get(), 5, next, out.get(), 5, prev, 7);
        !s.ok())
      return s;
    if (absl::Status s = expectEq(out.host(), mine(5, prev), "sendRecv");
        !s.ok())
      return s;
  }
  if (absl::Status s = c.barrier(); !s.ok())
    return s;
  // A split over every rank in reverse order: new rank = w - 1 - r.
  std::vector<int> rev(w);
  for (int k = 0; k < w; ++k)
    rev[k] = w - 1 - k;
  absl::StatusOr<std::unique_ptr<Communicator>> sub = c.split(rev);
  if (!sub.ok())
    return sub.status();
  if ((*sub)->rank() != w - 1 - r)
    return absl::InternalError("split: wrong new rank");
  DeviceVec one(std::vector<float>{static_cast<float>(r)});
  if (absl::Status s = (*sub)->allReduceSum(one.get(), 1); !s.ok())
    return s;
  return expectEq(one.host(), {static_cast<float>(w * (w - 1) / 2)},
                  "split allReduceSum");
}

TEST(NcclCommunicator, CollectivesOnDeviceBuffers) {
  rt::testing::GpuProbe gpus = rt::testing::probeGpusInChild();
  if (gpus.count == 0)
    GTEST_SKIP() << gpus.reason;
  const int world = gpus.count >= 2 ? 2 : 1;
  const int port = testing::freePort();
  std::vector<testing::RankResult> results = testing::runRanks(
      world,
      [&](int rank) -> absl::Status {
        CommOptions o;
        o.rank = rank;
        o.world = world;
        o.masterPort = port;
        o.timeout = std::chrono::seconds(30);
        absl::StatusOr<std::unique_ptr<Communicator>> c =
            connectNccl(o, deviceForLocalRank(rank, gpus.count));
        if (!c.ok())
          return c.status();
        return exercise(**c);
      },
      std::chrono::seconds(90));
  for (const testing::RankResult &r : results)
    EXPECT_EQ(r.exitCode, 0) << testing::describe(results);
  if (world == 1)
    std::printf("note: one GPU, so a one-rank run (two ranks need two GPUs)\n");
}

TEST(NcclCommunicator, RejectsBadCounts) {
  rt::testing::GpuProbe gpus = rt::testing::probeGpusInChild();
  if (gpus.count == 0)
    GTEST_SKIP() << gpus.reason;
  std::vector<testing::RankResult> results = testing::runRanks(
      1,
      [&](int) -> absl::Status {
        absl::StatusOr<std::unique_ptr<Communicator>> c =
            connectNccl(CommOptions{}, 0);
        if (!c.ok())
          return c.status();
        DeviceVec a(4), b(4);
        absl::Status s = (*c)->allGatherV(a.get(), 4, b.get(), {4, 4});
        if (s.code() != absl::StatusCode::kInvalidArgument ||
            s.message().find("2 entries for 1 ranks") == std::string::npos)
          return absl::InternalError(
              absl::StrCat("unexpected: ", s.ToString()));
        return absl::OkStatus();
      },
      std::chrono::seconds(60));
  EXPECT_EQ(results[0].exitCode, 0) << testing::describe(results);
}

} // namespace
} // namespace galaxy::comm
