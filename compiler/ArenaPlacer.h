// First-fit placement of buffers with known lifetimes in one arena: each new
// buffer goes at the lowest aligned offset where it overlaps no placed buffer
// whose lifetime intersects its own. Callers choose the order (LowerToPlan
// places the biggest first).
//
// A scan of the placed buffers in offset order made deep models compile in
// quadratic time: most placed buffers live at other times, and those that do
// are packed below the answer. Here the placed buffers are indexed by time,
// in spans of 16^k instruction indices: a buffer is filed as "live" under the
// fewest spans that tile its lifetime and as "born" under every span holding
// its first step. The buffers whose lifetimes intersect [begin, end] are then
// those live in a span holding `begin` and those born in spans within
// (begin, end]: a few dozen sets. Each set keeps its buffers in offset order
// in a treap whose subtrees know their highest end and an upper bound on their
// free gaps, so a set answers "the lowest free offset at or above x" in about
// log n steps; the offset rises until every set agrees. The answer is the
// scan's (tests/compiler/arena_placer_test.cpp checks it against the scan):
// the lowest aligned free offset, whatever order the buffers are seen in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace galaxy {

class ArenaPlacer {
public:
  // `align` rounds every offset up; lifetimes lie in [0, steps).
  ArenaPlacer(int64_t align, int64_t steps);

  // Places a buffer of `bytes` live over instructions [begin, end] (inclusive
  // at both ends, within [0, steps)) and returns its offset.
  int64_t place(int64_t begin, int64_t end, int64_t bytes);

  // The end of the highest placed buffer (unaligned).
  int64_t peak() const { return peak_; }
  // Steps taken by all placements so far (treap nodes and sets looked at):
  // what the placement costs, counted rather than timed, for the test that
  // keeps it near-linear.
  int64_t steps() const { return steps_; }

private:
  // Placed buffers in offset order.
  class OffsetSet {
  public:
    bool empty() const { return root_ < 0; }
    void insert(int64_t lo, int64_t hi, int64_t align);
    // Raises `off` (aligned) to the lowest aligned offset at or above it
    // where [off, off + bytes) meets no buffer of the set; true if it moved.
    bool raise(int64_t &off, int64_t bytes, int64_t align,
               int64_t &steps) const;

  private:
    struct Node {
      int64_t lo, hi;
      uint64_t prio;
      int32_t left, right;
      int64_t firstLo; // the lowest offset in the subtree
      int64_t maxHi;   // the highest end in the subtree, aligned
      // An upper bound on lo - (aligned highest end before it) over all but
      // the subtree's first buffer: exact for the first buffer of a right
      // part, an upper bound within it.
      int64_t maxGap;
    };
    void pull(int32_t t, int64_t align);
    void split(int32_t t, int64_t lo, int64_t hi, int32_t &l, int32_t &r,
               int64_t align);
    int32_t insertAt(int32_t t, int32_t id, int64_t align);
    // The scan from `off` over subtree t: true when the buffer fits at `off`
    // below one of its nodes, else `off` is raised past every node of t.
    bool fit(int32_t t, int64_t bytes, int64_t align, int64_t &off,
             int64_t &steps) const;
    std::vector<Node> nodes_;
    int32_t root_ = -1;
  };

  // The index over time: level k holds spans of kFanout^k steps, level 0
  // single steps, the last level one span over all.
  static constexpr int64_t kFanout = 16;
  struct Span {
    OffsetSet live; // buffers live at every step of the span (not its parent)
    OffsetSet born; // buffers whose first step lies in the span
  };
  // Calls f on the fewest spans that tile steps [lo, hi).
  template <typename F> void forEachCover(int64_t lo, int64_t hi, F &&f);

  int64_t align_;
  std::vector<std::vector<Span>> levels_;
  int64_t peak_ = 0;
  int64_t steps_ = 0;
};

} // namespace galaxy
