// ArenaPlacer returns exactly the offsets of the scan it replaced (plans must
// not change), and its work grows near-linearly with depth where the scan's
// grew quadratically (counted, not timed).
#include "compiler/ArenaPlacer.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace galaxy {
namespace {

struct Buf {
  int64_t begin, end, bytes;
};

// The placement LowerToPlan used before ArenaPlacer: placed buffers sorted by
// offset, scanned up to the first gap, skipping lifetimes disjoint from the
// new one's. `scanned` counts the buffers looked at.
std::vector<int64_t> scanPlace(const std::vector<Buf> &bufs, int64_t align,
                               int64_t *scanned = nullptr) {
  auto alignUp = [&](int64_t n) { return (n + align - 1) / align * align; };
  struct Placed {
    int64_t lo, hi, begin, end;
    bool operator<(const Placed &o) const {
      return lo != o.lo ? lo < o.lo : hi < o.hi;
    }
  };
  std::vector<Placed> placed;
  std::vector<int64_t> offsets;
  for (const Buf &b : bufs) {
    int64_t off = 0;
    for (const Placed &q : placed) {
      if (scanned)
        ++*scanned;
      if (q.begin > b.end || b.begin > q.end)
        continue;
      if (off + b.bytes <= q.lo)
        break;
      off = std::max(off, alignUp(q.hi));
    }
    Placed mine{off, off + b.bytes, b.begin, b.end};
    placed.insert(std::upper_bound(placed.begin(), placed.end(), mine), mine);
    offsets.push_back(off);
  }
  return offsets;
}

std::vector<int64_t> treePlace(const std::vector<Buf> &bufs, int64_t align,
                               int64_t *steps = nullptr) {
  int64_t t = 0;
  for (const Buf &b : bufs)
    t = std::max(t, b.end + 1);
  ArenaPlacer placer(align, t);
  std::vector<int64_t> offsets;
  for (const Buf &b : bufs)
    offsets.push_back(placer.place(b.begin, b.end, b.bytes));
  if (steps)
    *steps = placer.steps();
  return offsets;
}

// LowerToPlan's order: biggest first, then earliest.
void sortLikeLowering(std::vector<Buf> &bufs) {
  std::stable_sort(bufs.begin(), bufs.end(), [](const Buf &a, const Buf &b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.begin < b.begin;
  });
}

// A training step's buffers over `layers` layers: each layer's forward keeps
// activations until its backward, mirrored at the end of the step, and makes
// short-lived temporaries, as do the backward and the optimizer update.
std::vector<Buf> trainingStep(int layers, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t sizes[] = {393216, 1572864, 196608, 3072, 12288, 160};
  auto size = [&] { return sizes[rng() % 6]; };
  std::vector<Buf> bufs;
  const int64_t perLayer = 12, steps = 2 * layers * perLayer + 4 * layers;
  for (int l = 0; l < layers; ++l)
    for (int64_t i = 0; i < perLayer; ++i) {
      const int64_t t = l * perLayer + i;
      const int64_t back = steps - 4 * layers - 1 - t;
      if (i % 3 == 0)
        bufs.push_back({t, back, size()}); // saved for the backward
      bufs.push_back({t, t + 1 + int64_t(rng() % 3), size()});
      bufs.push_back({back, std::min(steps - 1, back + 2), size()});
    }
  for (int64_t t = steps - 4 * layers; t < steps; ++t)
    bufs.push_back({t, std::min(steps - 1, t + 1), size()});
  sortLikeLowering(bufs);
  return bufs;
}

TEST(ArenaPlacer, SameOffsetsAsTheScanOnTrainingSteps) {
  for (int layers : {1, 3, 16, 40})
    for (uint32_t seed : {1u, 2u, 3u}) {
      std::vector<Buf> bufs = trainingStep(layers, seed);
      EXPECT_EQ(treePlace(bufs, 64), scanPlace(bufs, 64))
          << layers << " layers, seed " << seed;
    }
}

// Random lifetimes and sizes (ties and empty buffers included), in the
// lowering's order and in any order, with other alignments.
TEST(ArenaPlacer, SameOffsetsAsTheScanOnRandomBuffers) {
  for (uint32_t seed = 0; seed < 40; ++seed) {
    std::mt19937 rng(seed);
    const int n = 1 + rng() % 400;
    const int64_t steps = 1 + rng() % 300;
    std::vector<Buf> bufs;
    for (int i = 0; i < n; ++i) {
      int64_t b = rng() % steps, e = b + rng() % (1 + (rng() % 2 ? 4 : steps));
      int64_t bytes = rng() % 5 == 0 ? (rng() % 4) * 64 : 1 + rng() % 5000;
      bufs.push_back({b, std::min(e, steps - 1), bytes});
    }
    if (seed % 2 == 0)
      sortLikeLowering(bufs);
    for (int64_t align : {int64_t(1), int64_t(64), int64_t(100)})
      EXPECT_EQ(treePlace(bufs, align), scanPlace(bufs, align))
          << "seed " << seed << ", align " << align;
  }
}

// Compile time linear in layers, counted rather than timed: four times the
// layers may cost at most ten times the steps (the index's log factors: 7x
// here); the scan it replaced looked at 15.7x as many buffers (scanPlace's
// count: 1.0M for 50 layers, 15.7M for 200).
TEST(ArenaPlacer, CompileTimeNearLinearInLayers) {
  int64_t small = 0, large = 0;
  treePlace(trainingStep(50, 7), 64, &small);
  treePlace(trainingStep(200, 7), 64, &large);
  EXPECT_LT(large, 10 * small)
      << small << " steps for 50 layers, " << large << " for 200";
}

} // namespace
} // namespace galaxy
