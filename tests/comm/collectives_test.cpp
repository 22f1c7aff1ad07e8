// Every collective between real processes over loopback, world 2 and 3, with
// uneven per-rank counts.
#include <numeric>

#include "runtime/comm/communicator.h"
#include "tests/comm/check.h"
#include "tests/comm/multiprocess.h"
#include "gtest/gtest.h"

namespace galaxy::comm {
namespace {

using testing::describe;
using testing::expectEqual;
using testing::freePort;
using testing::runRanks;

// Rank r's input element i: distinct per rank and exact in float.
float value(int r, size_t i) { return float(r * 1000 + i); }

std::vector<size_t> unevenCounts(int world) {
  return world == 2 ? std::vector<size_t>{7, 3} : std::vector<size_t>{7, 3, 1};
}

class Collectives : public ::testing::TestWithParam<int> {
protected:
  // Runs body(comm) on every rank of a fresh world; fails the test if any
  // rank reports an error.
  void runWorld(const std::function<absl::Status(Communicator &)> &body) {
    const int world = GetParam();
    const int port = freePort();
    auto results = runRanks(world, [&](int rank) -> absl::Status {
      CommOptions o;
      o.rank = rank;
      o.world = world;
      o.masterPort = port;
      o.timeout = std::chrono::seconds(10);
      auto comm = connectGloo(o);
      if (!comm.ok())
        return comm.status();
      if ((*comm)->rank() != rank || (*comm)->size() != world)
        return absl::InternalError("wrong rank/size");
      RETURN_IF_ERROR(body(**comm));
      return (*comm)->barrier(); // nobody tears down the store early
    });
    for (const auto &r : results)
      EXPECT_EQ(r.exitCode, 0) << describe(results);
  }
};

TEST_P(Collectives, AllReduceSumFloatAndInt) {
  runWorld([](Communicator &c) -> absl::Status {
    const size_t n = 1000;
    std::vector<float> buf(n), want(n, 0);
    std::vector<int32_t> ibuf(n), iwant(n, 0);
    for (size_t i = 0; i < n; ++i) {
      buf[i] = value(c.rank(), i);
      ibuf[i] = c.rank() * 7 + int32_t(i);
      for (int r = 0; r < c.size(); ++r) {
        want[i] += value(r, i);
        iwant[i] += r * 7 + int32_t(i);
      }
    }
    RETURN_IF_ERROR(c.allReduceSum(buf.data(), n));
    RETURN_IF_ERROR(expectEqual(buf, want, "allreduce f32"));
    RETURN_IF_ERROR(c.allReduceSum(ibuf.data(), n));
    return expectEqual(ibuf, iwant, "allreduce i32");
  });
}

TEST_P(Collectives, AllGatherVUneven) {
  runWorld([](Communicator &c) -> absl::Status {
    auto counts = unevenCounts(c.size());
    std::vector<float> in(counts[c.rank()]), want;
    for (size_t i = 0; i < in.size(); ++i)
      in[i] = value(c.rank(), i);
    for (int r = 0; r < c.size(); ++r)
      for (size_t i = 0; i < counts[r]; ++i)
        want.push_back(value(r, i));
    std::vector<float> out(want.size(), -1);
    RETURN_IF_ERROR(c.allGatherV(in.data(), in.size(), out.data(), counts));
    RETURN_IF_ERROR(expectEqual(out, want, "allgatherv"));
    // A count that disagrees with the input length is caught locally.
    if (c.allGatherV(in.data(), in.size() + 1, out.data(), counts).ok())
      return absl::InternalError("bad inCount accepted");
    return absl::OkStatus();
  });
}

TEST_P(Collectives, ReduceScatterVUneven) {
  runWorld([](Communicator &c) -> absl::Status {
    auto counts = unevenCounts(c.size());
    const size_t total = std::accumulate(counts.begin(), counts.end(), 0ul);
    size_t off = 0;
    for (int r = 0; r < c.rank(); ++r)
      off += counts[r];
    std::vector<float> in(total);
    for (size_t i = 0; i < total; ++i)
      in[i] = value(c.rank(), i);
    std::vector<float> want(counts[c.rank()], 0), out(counts[c.rank()], -1);
    for (size_t j = 0; j < want.size(); ++j)
      for (int r = 0; r < c.size(); ++r)
        want[j] += value(r, off + j);
    // Twice: the second call reuses the staging buffers.
    for (int rep = 0; rep < 2; ++rep) {
      RETURN_IF_ERROR(c.reduceScatterV(in.data(), out.data(), counts));
      RETURN_IF_ERROR(expectEqual(out, want, "reducescatterv"));
    }
    return absl::OkStatus();
  });
}

// A rank may own nothing (e.g. fewer heads than ranks): zero counts work.
TEST_P(Collectives, ZeroCountsAreAllowed) {
  runWorld([](Communicator &c) -> absl::Status {
    std::vector<size_t> counts = c.size() == 2 ? std::vector<size_t>{0, 5}
                                               : std::vector<size_t>{4, 0, 2};
    size_t total = 0;
    for (size_t n : counts)
      total += n;
    std::vector<float> in(counts[c.rank()], float(c.rank() + 1)),
        gathered(total);
    RETURN_IF_ERROR(
        c.allGatherV(in.data(), in.size(), gathered.data(), counts));
    std::vector<float> want;
    for (int r = 0; r < c.size(); ++r)
      want.insert(want.end(), counts[r], float(r + 1));
    RETURN_IF_ERROR(expectEqual(gathered, want, "allgatherv with zeros"));
    std::vector<float> full(total, 1.0f), part(counts[c.rank()], -1);
    RETURN_IF_ERROR(c.reduceScatterV(full.data(), part.data(), counts));
    RETURN_IF_ERROR(
        expectEqual(part, std::vector<float>(counts[c.rank()], float(c.size())),
                    "reducescatterv with zeros"));
    // All-to-all where only rank 0's chunks are non-empty.
    std::vector<size_t> send(c.size(), c.rank() == 0 ? 2 : 0);
    std::vector<size_t> recv(c.size(), 0);
    recv[0] = 2;
    std::vector<float> a(2 * send[0] * c.size(), 7.0f), b(2, -1);
    RETURN_IF_ERROR(c.allToAllV(a.data(), send, b.data(), recv));
    return expectEqual(b, std::vector<float>(2, 7.0f), "alltoallv with zeros");
  });
}

TEST_P(Collectives, AllToAllVUneven) {
  runWorld([](Communicator &c) -> absl::Status {
    const int w = c.size(), me = c.rank();
    auto count = [](int src, int dst) {
      return size_t(1 + (src * 2 + dst) % 3);
    };
    auto elem = [](int src, int dst, size_t i) {
      return float(src * 100 + dst * 10 + int(i));
    };
    std::vector<size_t> sendCounts(w), recvCounts(w);
    std::vector<float> in, want;
    for (int d = 0; d < w; ++d) {
      sendCounts[d] = count(me, d);
      for (size_t i = 0; i < sendCounts[d]; ++i)
        in.push_back(elem(me, d, i));
    }
    for (int s = 0; s < w; ++s) {
      recvCounts[s] = count(s, me);
      for (size_t i = 0; i < recvCounts[s]; ++i)
        want.push_back(elem(s, me, i));
    }
    std::vector<float> out(want.size(), -1);
    RETURN_IF_ERROR(c.allToAllV(in.data(), sendCounts, out.data(), recvCounts));
    return expectEqual(out, want, "alltoallv");
  });
}

TEST_P(Collectives, BroadcastFromLastRank) {
  runWorld([](Communicator &c) -> absl::Status {
    const int root = c.size() - 1;
    std::vector<float> buf(33), want(33);
    std::vector<int32_t> ibuf(5, c.rank()), iwant(5, root);
    for (size_t i = 0; i < buf.size(); ++i) {
      buf[i] = value(c.rank(), i);
      want[i] = value(root, i);
    }
    RETURN_IF_ERROR(c.broadcast(buf.data(), buf.size(), root));
    RETURN_IF_ERROR(expectEqual(buf, want, "broadcast f32"));
    RETURN_IF_ERROR(c.broadcast(ibuf.data(), ibuf.size(), root));
    return expectEqual(ibuf, iwant, "broadcast i32");
  });
}

TEST_P(Collectives, SendRecvAndRingExchange) {
  runWorld([](Communicator &c) -> absl::Status {
    const int w = c.size(), me = c.rank();
    // Plain send/recv 0 -> 1 with two tags, received in the opposite order.
    if (me == 0) {
      std::vector<float> a(4, 1.5f), b(2, 2.5f);
      RETURN_IF_ERROR(c.send(a.data(), a.size(), 1, /*tag=*/1));
      RETURN_IF_ERROR(c.send(b.data(), b.size(), 1, /*tag=*/2));
    } else if (me == 1) {
      std::vector<float> a(4), b(2);
      RETURN_IF_ERROR(c.recv(a.data(), a.size(), 0, 1));
      RETURN_IF_ERROR(c.recv(b.data(), b.size(), 0, 2));
      RETURN_IF_ERROR(
          expectEqual(a, std::vector<float>(4, 1.5f), "recv tag 1"));
      RETURN_IF_ERROR(
          expectEqual(b, std::vector<float>(2, 2.5f), "recv tag 2"));
    }
    // Everyone sends right and receives from the left at the same time.
    std::vector<float> mine(3, float(me)), got(3, -1);
    RETURN_IF_ERROR(c.sendRecv(mine.data(), 3, (me + 1) % w, got.data(), 3,
                               (me + w - 1) % w, /*tag=*/9));
    RETURN_IF_ERROR(expectEqual(
        got, std::vector<float>(3, float((me + w - 1) % w)), "ring"));
    if (c.send(mine.data(), 3, me, 0).ok())
      return absl::InternalError("send to self accepted");
    return absl::OkStatus();
  });
}

TEST_P(Collectives, SplitIntoSubGroups) {
  runWorld([](Communicator &c) -> absl::Status {
    const int w = c.size(), me = c.rank();
    // Stage groups: {0, 1} and the rest ({2} for world 3); for world 2 the
    // second group is {1} reordered first: [1, 0] as well.
    std::vector<int> group =
        me < 2 ? std::vector<int>{0, 1} : std::vector<int>{2};
    auto sub = c.split(group);
    if (!sub.ok())
      return sub.status();
    const int want =
        int(std::find(group.begin(), group.end(), me) - group.begin());
    if ((*sub)->rank() != want || (*sub)->size() != int(group.size()))
      return absl::InternalError("sub rank/size wrong");
    float x = float(me + 1);
    RETURN_IF_ERROR((*sub)->allReduceSum(&x, 1));
    float expect = 0;
    for (int r : group)
      expect += float(r + 1);
    RETURN_IF_ERROR(
        expectEqual(std::vector<float>{x}, {expect}, "sub allreduce"));
    // A reordered group: new rank = position in the list.
    if (me == 0 || me == w - 1) {
      auto rev = c.split({w - 1, 0});
      if (!rev.ok())
        return rev.status();
      if ((*rev)->rank() != (me == 0 ? 1 : 0))
        return absl::InternalError("reordered split rank wrong");
      std::vector<float> v(2, float(me));
      RETURN_IF_ERROR((*rev)->broadcast(v.data(), 2, /*root=*/0));
      RETURN_IF_ERROR(
          expectEqual(v, std::vector<float>(2, float(w - 1)), "rev bcast"));
    }
    // Non-members are told so instead of hanging.
    if (me == w - 1 && c.split({0}).ok())
      return absl::InternalError("non-member split accepted");
    // The parent still works after splits.
    float y = 1;
    RETURN_IF_ERROR(c.allReduceSum(&y, 1));
    return expectEqual(std::vector<float>{y}, {float(w)}, "parent after split");
  });
}

INSTANTIATE_TEST_SUITE_P(World, Collectives, ::testing::Values(2, 3),
                         [](const auto &info) {
                           return "world" + std::to_string(info.param);
                         });

TEST(SingleRank, CollectivesAreIdentities) {
  CommOptions o; // world 1: no port needed
  auto comm = connectGloo(o);
  ASSERT_TRUE(comm.ok()) << comm.status();
  std::vector<float> v{1, 2, 3}, out(3);
  ASSERT_TRUE((*comm)->allReduceSum(v.data(), 3).ok());
  ASSERT_TRUE((*comm)->reduceScatterV(v.data(), out.data(), {3}).ok());
  EXPECT_EQ(out, v);
  ASSERT_TRUE((*comm)->allGatherV(v.data(), 3, out.data(), {3}).ok());
  EXPECT_EQ(out, v);
  ASSERT_TRUE((*comm)->barrier().ok());
}

} // namespace
} // namespace galaxy::comm
