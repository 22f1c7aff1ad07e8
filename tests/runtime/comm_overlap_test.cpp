// Where the executor waits for a collective it runs behind the computation
// (completionPoints), and the communication thread's order and errors.
#include "runtime/exec/comm_overlap.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace galaxy::rt {
namespace {

// An instruction reading `in` and writing `out`, each a [lo, hi) byte span
// of one fake arena.
char arena[1024];
MemoryAccess instr(std::vector<std::pair<int, int>> in,
                   std::vector<std::pair<int, int>> out) {
  MemoryAccess a;
  for (auto [lo, hi] : in)
    a.reads.push_back({arena + lo, arena + hi});
  for (auto [lo, hi] : out)
    a.writes.push_back({arena + lo, arena + hi});
  return a;
}

TEST(CompletionPoints, WaitsAtTheFirstInstructionTouchingTheCollective) {
  // 0: x = f()          [0,64)
  // 1: y = all_reduce x [64,128)   async
  // 2: z = g()          [128,192)  independent
  // 3: w = h(z)         [192,256)  independent
  // 4: v = k(y)                    reads y: wait here
  const std::vector<MemoryAccess> a = {
      instr({}, {{0, 64}}), instr({{0, 64}}, {{64, 128}}),
      instr({}, {{128, 192}}), instr({{128, 192}}, {{192, 256}}),
      instr({{64, 128}}, {{0, 64}})};
  const std::vector<bool> async = {false, true, false, false, false};
  EXPECT_EQ(completionPoints(a, async),
            (std::vector<int>{-1, -1, -1, -1, 1, 1}));
}

TEST(CompletionPoints, WritingTheInputOrReusingItsMemoryWaits) {
  // The collective reads [0,64): an instruction writing there (a buffer
  // placed on the input's memory) must wait; reading it need not.
  const std::vector<MemoryAccess> a = {instr({{0, 64}}, {{64, 128}}), // async
                                       instr({{0, 64}}, {{200, 264}}),
                                       instr({}, {{32, 40}})};
  EXPECT_EQ(completionPoints(a, {true, false, false}),
            (std::vector<int>{-1, -1, 0, 0}));
}

TEST(CompletionPoints, CollectivesFinishInOrderAndAllByTheEnd) {
  // Two collectives in a row, nothing touches either: the end waits for the
  // last (and so for both). A collective does not wait for another one.
  const std::vector<MemoryAccess> a = {instr({{0, 64}}, {{64, 128}}),
                                       instr({{64, 128}}, {{128, 192}}),
                                       instr({}, {{300, 400}})};
  EXPECT_EQ(completionPoints(a, {true, true, false}),
            (std::vector<int>{-1, -1, -1, 1}));
}

TEST(CommThread, RunsJobsInOrderAndWaitsForATicket) {
  CommThread t;
  std::vector<int> seen;
  std::atomic<bool> release{false};
  const uint64_t a = t.start([&] {
    while (!release)
      std::this_thread::yield();
    seen.push_back(1);
    return absl::OkStatus();
  });
  const uint64_t b = t.start([&] {
    seen.push_back(2);
    return absl::OkStatus();
  });
  EXPECT_LT(a, b);
  release = true;
  EXPECT_TRUE(t.wait(b).ok());
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  EXPECT_TRUE(t.drain().ok());
  // Usable again after a drain (a later run of the same executor).
  const uint64_t c = t.start([&] {
    seen.push_back(3);
    return absl::OkStatus();
  });
  EXPECT_TRUE(t.wait(c).ok());
  EXPECT_EQ(seen.back(), 3);
}

TEST(CommThread, AnErrorSkipsTheRestAndIsReported) {
  CommThread t;
  bool ranAfter = false;
  t.start([] { return absl::UnavailableError("peer lost"); });
  const uint64_t b = t.start([&] {
    ranAfter = true;
    return absl::OkStatus();
  });
  absl::Status s = t.wait(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "peer lost");
  EXPECT_FALSE(ranAfter);
  EXPECT_FALSE(t.drain().ok());
}

} // namespace
} // namespace galaxy::rt
