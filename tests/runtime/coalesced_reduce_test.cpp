// Coalesced all-reduces (plan Instr.coalesce): a group summed as one
// collective gives every member what its own all-reduce gives, directly
// (runCoalescedAllReduce) and through the Executor (communication thread and
// in place), with real ranks (forked processes) over Gloo.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/collectives.h"
#include "runtime/exec/executor.h"
#include "tests/comm/multiprocess.h"
#include "tests/runtime/plan_builder.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

using comm::testing::connectLoopback;
using comm::testing::expectEveryRankOk;

// Members of uneven sizes; small integers, so every order of summing the
// ranks' values gives the same float.
const std::vector<int64_t> kSizes = {5, 1, 17, 3};

float valueAt(int rank, int member, int64_t i) {
  return float((rank + 1) * 100 + member * 10 + i % 7) - 50;
}

absl::Status same(const std::string &what, const std::vector<float> &got,
                  const std::vector<float> &want) {
  if (got == want)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": got [",
                                          absl::StrJoin(got, ", "), "], want [",
                                          absl::StrJoin(want, ", "), "]"));
}

// The group summed at once == each member summed by its own all-reduce.
// Member 1 is in place (x == y).
absl::Status runDirectRank(int rank, int world, int port) {
  auto c = connectLoopback(rank, world, port);
  if (!c.ok())
    return c.status();
  const int n = int(kSizes.size());
  std::vector<std::vector<float>> xs(n), ys(n), one(n);
  std::vector<DataMove> moves(n);
  std::vector<ReduceMember> members;
  for (int m = 0; m < n; ++m) {
    for (int64_t i = 0; i < kSizes[m]; ++i)
      xs[m].push_back(valueAt(rank, m, i));
    ys[m].assign(kSizes[m], -1.0f);
    moves[m].numel = kSizes[m];
    Tensor x{xs[m].data(), plan::F32, {kSizes[m]}};
    Tensor y{(m == 1 ? xs[m] : ys[m]).data(), plan::F32, {kSizes[m]}};
    one[m] = xs[m];
    members.push_back({&moves[m], x, y});
  }
  std::vector<char> scratch;
  for (int m = 0; m < n; ++m) { // the reference, member by member
    Tensor t{one[m].data(), plan::F32, {kSizes[m]}};
    if (absl::Status s = runDataMove(moves[m], t, t, c->get(), rank, scratch);
        !s.ok())
      return s;
  }
  if (absl::Status s = runCoalescedAllReduce(members, c->get(), world, scratch);
      !s.ok())
    return s;
  for (int m = 0; m < n; ++m)
    if (absl::Status s = same(absl::StrCat("rank ", rank, " member ", m),
                              m == 1 ? xs[m] : ys[m], one[m]);
        !s.ok())
      return s;
  return absl::OkStatus();
}

// A plan: partial_m = (rank + 1) · (the m-th stretch of the batch field),
// then the group of all-reduces (member 1 in place).
plan::Plan groupPlan(int rank, int world, int coalesce) {
  PlanBuilder pb(rank, world);
  const std::string p = "p";
  const int64_t total = 5 + 1 + 17 + 3;
  std::vector<int> partial, reduced;
  int64_t at = 0;
  for (size_t m = 0; m < kSizes.size(); ++m) {
    const int x =
        pb.input("attention_mask", {kSizes[m]}, plan::F32, {total}, {at});
    at += kSizes[m];
    pb.bindInput(p, "attention_mask", x); // each its stretch of the field
    partial.push_back(pb.arena(absl::StrCat("partial", m), {kSizes[m]}));
    setFloat(pb.add(p, "scale", {x}, {partial.back()}), "alpha", rank + 1.0);
    reduced.push_back(m == 1
                          ? partial.back()
                          : pb.arena(absl::StrCat("reduced", m), {kSizes[m]}));
  }
  for (size_t m = 0; m < kSizes.size(); ++m) {
    plan::Instr &ar = pb.add(p, "all_reduce", {partial[m]}, {reduced[m]});
    if (m == 0)
      ar.set_coalesce(coalesce);
  }
  for (size_t m = 0; m < kSizes.size(); ++m)
    pb.bindOutput(p, absl::StrCat("reduced", m), reduced[m]);
  return pb.finish();
}

absl::Status runExecutorRank(int rank, int world, int port) {
  auto c = connectLoopback(rank, world, port);
  if (!c.ok())
    return c.status();
  auto backend = makeCpuBackend();
  auto ex = Executor::create(groupPlan(rank, world, int(kSizes.size())),
                             *backend, c->get());
  if (!ex.ok())
    return ex.status();
  io::Batch batch;
  std::vector<float> g;
  for (size_t m = 0; m < kSizes.size(); ++m)
    for (int64_t i = 0; i < kSizes[m]; ++i)
      g.push_back(valueAt(0, int(m), i));
  batch.floats("attention_mask") = g;
  const float ranks = world * (world + 1) / 2.0f;
  for (int round = 0; round < 2; ++round) {
    (*ex)->setCommOverlap(round == 0);
    auto out = (*ex)->run("p", batch, KernelContext{});
    if (!out.ok())
      return out.status();
    size_t at = 0;
    for (size_t m = 0; m < kSizes.size(); ++m) {
      std::vector<float> want(g.begin() + at, g.begin() + at + kSizes[m]);
      for (float &v : want)
        v *= ranks;
      at += kSizes[m];
      if (absl::Status s =
              same(absl::StrCat("rank ", rank, " round ", round, " reduced", m),
                   (*out)[absl::StrCat("reduced", m)], want);
          !s.ok())
        return s;
    }
  }
  return absl::OkStatus();
}

class CoalescedReduce : public ::testing::TestWithParam<int> {};

TEST_P(CoalescedReduce, EqualsMemberByMember) {
  const int world = GetParam();
  expectEveryRankOk(
      world, [&](int r, int port) { return runDirectRank(r, world, port); });
}

TEST_P(CoalescedReduce, ExecutorRunsAGroup) {
  const int world = GetParam();
  expectEveryRankOk(
      world, [&](int r, int port) { return runExecutorRank(r, world, port); });
}

INSTANTIATE_TEST_SUITE_P(Worlds, CoalescedReduce, ::testing::Values(2, 3),
                         [](const auto &info) {
                           return absl::StrCat("world", info.param);
                         });

TEST(CoalescedReduceSerial, BadGroupsAreRefusedWhenBound) {
  auto backend = makeCpuBackend();
  for (auto [coalesce, why] :
       {std::pair{5, "the program has 4 instructions from here"},
        std::pair{-1, "the program has"}}) {
    auto ex = Executor::create(groupPlan(0, 1, coalesce), *backend);
    ASSERT_FALSE(ex.ok()) << coalesce;
    EXPECT_NE(ex.status().message().find(why), std::string::npos)
        << ex.status();
  }
  // A group starting at a scale is refused too.
  plan::Plan bad = groupPlan(0, 1, 0);
  bad.mutable_programs(0)->mutable_instrs(3)->set_coalesce(2);
  auto ex = Executor::create(std::move(bad), *backend);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.status().message().find("is not an untiled f32 all_reduce"),
            std::string::npos)
      << ex.status();
  // World 1: the group's members are copies.
  auto ok = Executor::create(groupPlan(0, 1, 4), *backend);
  ASSERT_TRUE(ok.ok()) << ok.status();
}

} // namespace
} // namespace galaxy::rt::testing
