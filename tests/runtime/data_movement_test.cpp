// all_gather / reduce_scatter / slice / all_reduce through the Executor on
// hand-built plans, with real ranks (forked processes) over Gloo.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "tests/comm/multiprocess.h"
#include "tests/runtime/plan_builder.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

using comm::testing::expectEveryRankOk;

// Uneven splits per world size: along dim 1 of [2,6,4] (all_gather), dim 2
// (reduce_scatter), dim 0 (slice; one rank gets nothing), and the ids.
struct Splits {
  Shape gather, scatter, slice, ids;
};
Splits splitsFor(int world) {
  if (world == 2)
    return {{4, 2}, {3, 1}, {2, 0}, {1, 5}};
  return {{3, 1, 2}, {2, 1, 1}, {1, 0, 1}, {2, 0, 4}};
}

const Shape kFull = {2, 6, 4};

std::vector<float> globalData() {
  std::vector<float> g(48);
  for (size_t i = 0; i < g.size(); ++i)
    g[i] = 0.5f * float(i) - 7.0f;
  return g;
}

// Rank r's box of g [2,6,4] along `dim`.
std::vector<float> box(const std::vector<float> &g, int dim, int64_t off,
                       int64_t n) {
  std::vector<float> out;
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 6; ++b)
      for (int64_t c = 0; c < 4; ++c) {
        int64_t idx[3] = {a, b, c};
        if (idx[dim] >= off && idx[dim] < off + n)
          out.push_back(g[(a * 6 + b) * 4 + c]);
      }
  return out;
}

plan::Plan movementPlan(int rank, int world) {
  const Splits s = splitsFor(world);
  const Shape go = offsetsOf(s.gather), so = offsetsOf(s.scatter),
              lo = offsetsOf(s.slice), io = offsetsOf(s.ids);
  PlanBuilder pb(rank, world);
  const std::string p = "p";
  const int x = pb.input("attention_mask", {2, s.gather[rank], 4}, plan::F32,
                         kFull, {0, go[rank], 0});
  pb.bindInput(p, "attention_mask", x);
  const int gathered = pb.arena("gathered", kFull);
  addMove(pb, p, "all_gather", x, gathered, 1, s.gather);
  const int partial = pb.arena("partial", kFull);
  setFloat(pb.add(p, "scale", {gathered}, {partial}), "alpha", rank + 1.0);
  const int scattered = pb.arena("scattered", {2, 6, s.scatter[rank]});
  addMove(pb, p, "reduce_scatter", partial, scattered, -1, s.scatter);
  const int sliced = pb.arena("sliced", {s.slice[rank], 6, 4});
  addMove(pb, p, "slice", gathered, sliced, 0, s.slice);
  pb.setGlobal(sliced, kFull,
               {lo[rank], 0, 0}); // the executor gathers this output
  const int reduced = pb.arena("reduced", kFull);
  pb.add(p, "all_reduce", {partial}, {reduced});

  const int ids =
      pb.input("input_ids", {1, s.ids[rank]}, plan::I32, {1, 6}, {0, io[rank]});
  pb.bindInput(p, "input_ids", ids);
  const int idsAll = pb.arena("ids", {1, 6}, plan::I32);
  addMove(pb, p, "all_gather", ids, idsAll, 1, s.ids);
  const int idsSum = pb.arena("ids.sum", {1, 6}, plan::I32);
  pb.add(p, "all_reduce", {idsAll}, {idsSum});
  const int idsSliced = pb.arena("ids.sliced", {1, s.gather[rank]}, plan::I32);
  addMove(pb, p, "slice", idsSum, idsSliced, 1, s.gather);

  for (auto [name, id] : {std::pair{"gathered", gathered},
                          {"scattered", scattered},
                          {"sliced", sliced},
                          {"reduced", reduced},
                          {"ids", idsAll},
                          {"ids.sum", idsSum},
                          {"ids.sliced", idsSliced}})
    pb.bindOutput(p, name, id);
  return pb.finish();
}

absl::Status expectEqual(const std::string &what, const std::vector<float> &got,
                         const std::vector<float> &want) {
  bool same = got.size() == want.size();
  for (size_t i = 0; same && i < got.size(); ++i)
    same = std::fabs(got[i] - want[i]) <= 1e-5f * (1 + std::fabs(want[i]));
  if (same)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": got [",
                                          absl::StrJoin(got, ", "), "], want [",
                                          absl::StrJoin(want, ", "), "]"));
}

absl::Status runMovementRank(int rank, int world, int port) {
  comm::CommOptions o;
  o.rank = rank;
  o.world = world;
  o.masterPort = port;
  o.timeout = std::chrono::seconds(10);
  auto c = comm::connectGloo(o);
  if (!c.ok())
    return c.status();
  auto backend = makeCpuBackend();
  auto ex = Executor::create(movementPlan(rank, world), *backend, c->get());
  if (!ex.ok())
    return ex.status();
  io::Batch batch;
  batch.floats("attention_mask") = globalData();
  batch.ints("input_ids") = {3, 1, 4, 1, 5, 9};
  // Twice: the second run reuses the scratch space and the bound tensors;
  // the first overlaps the collectives with the rest (the default), the
  // second runs each in place.
  for (int round = 0; round < 2; ++round) {
    (*ex)->setCommOverlap(round == 0);
    auto out = (*ex)->run("p", batch, KernelContext{});
    if (!out.ok())
      return out.status();
    const Splits s = splitsFor(world);
    const std::vector<float> g = globalData();
    const float total = world * (world + 1) / 2.0f;
    std::vector<float> sum = g;
    for (float &v : sum)
      v *= total;
    for (auto [name, want] :
         std::initializer_list<std::pair<const char *, std::vector<float>>>{
             {"gathered", g},
             {"reduced", sum},
             {"sliced", g}, // gathered back to global by the executor
             {"scattered",
              box(sum, 2, offsetsOf(s.scatter)[rank], s.scatter[rank])},
             {"ids", {3, 1, 4, 1, 5, 9}}}) {
      if (absl::Status st = expectEqual(absl::StrCat("rank ", rank, " ", name),
                                        (*out)[name], want);
          !st.ok())
        return st;
    }
    std::vector<float> idsSum;
    for (float v : {3, 1, 4, 1, 5, 9})
      idsSum.push_back(v * world);
    if (absl::Status st = expectEqual("ids.sum", (*out)["ids.sum"], idsSum);
        !st.ok())
      return st;
    const int64_t off = offsetsOf(s.gather)[rank];
    std::vector<float> idsSliced(idsSum.begin() + off,
                                 idsSum.begin() + off + s.gather[rank]);
    if (absl::Status st =
            expectEqual("ids.sliced", (*out)["ids.sliced"], idsSliced);
        !st.ok())
      return st;
  }
  return absl::OkStatus();
}

class DataMovement : public ::testing::TestWithParam<int> {};

TEST_P(DataMovement, MatchesTheGlobalComputation) {
  const int world = GetParam();
  expectEveryRankOk(
      world, [&](int r, int port) { return runMovementRank(r, world, port); });
}

INSTANTIATE_TEST_SUITE_P(Worlds, DataMovement, ::testing::Values(2, 3),
                         [](const auto &info) {
                           return absl::StrCat("world", info.param);
                         });

TEST(DataMovementSerial, WorldOneMovesAreCopies) {
  // A world-1 plan may still carry data movement; without a communicator
  // every move is a copy.
  auto backend = makeCpuBackend();
  PlanBuilder pb(0, 1);
  const int x = pb.input("attention_mask", {2, 6, 4}, plan::F32);
  pb.bindInput("p", "attention_mask", x);
  const int y = pb.arena("y", kFull), z = pb.arena("z", kFull),
            w = pb.arena("w", kFull);
  addMove(pb, "p", "all_gather", x, y, 1, {6});
  addMove(pb, "p", "reduce_scatter", y, z, 2, {4});
  pb.add("p", "all_reduce", {z}, {w});
  pb.bindOutput("p", "w", w);
  auto ex = Executor::create(pb.finish(), *backend);
  ASSERT_TRUE(ex.ok()) << ex.status();
  io::Batch batch;
  batch.floats("attention_mask") = globalData();
  auto out = (*ex)->run("p", batch, KernelContext{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)["w"], globalData());
}

TEST(DataMovementSerial, BadShapesAreRefusedWhenBound) {
  auto backend = makeCpuBackend();
  auto build = [](const Shape &sizes, const Shape &yShape, bool withSizes) {
    PlanBuilder pb(0, 1);
    const int x = pb.arena("x", {2, 6, 4});
    const int y = pb.arena("y", yShape);
    plan::Instr &i = pb.add("p", "all_gather", {x}, {y});
    setInt(i, "dim", 1);
    if (withSizes)
      setInts(i, "sizes", sizes);
    return pb.finish();
  };
  auto wrongTotal = Executor::create(build({6}, {2, 7, 4}, true), *backend);
  ASSERT_FALSE(wrongTotal.ok());
  EXPECT_NE(
      wrongTotal.status().message().find("do not fit 'sizes' [6] along dim 1"),
      std::string::npos)
      << wrongTotal.status();
  auto wrongCount = Executor::create(build({3, 3}, {2, 6, 4}, true), *backend);
  ASSERT_FALSE(wrongCount.ok());
  EXPECT_NE(
      wrongCount.status().message().find("has 2 entries for a world of 1"),
      std::string::npos)
      << wrongCount.status();
  auto noSizes = Executor::create(build({}, {2, 6, 4}, false), *backend);
  ASSERT_FALSE(noSizes.ok());
  EXPECT_NE(noSizes.status().message().find("needs an ints attribute 'sizes'"),
            std::string::npos)
      << noSizes.status();
}

} // namespace
} // namespace galaxy::rt::testing
