#include "compiler/ArenaPlacer.h"

#include <algorithm>
#include <limits>

namespace galaxy {
namespace {

constexpr int64_t kNoGap = std::numeric_limits<int64_t>::min();

int64_t alignUp(int64_t n, int64_t align) {
  return (n + align - 1) / align * align;
}

// A fixed priority sequence: a treap's shape, and so the work done, is the
// same on every run (the offsets do not depend on it).
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

} // namespace

void ArenaPlacer::OffsetSet::pull(int32_t t, int64_t align) {
  Node &n = nodes_[t];
  n.firstLo = n.lo;
  n.maxHi = alignUp(n.hi, align);
  n.maxGap = kNoGap;
  if (n.left >= 0) {
    const Node &l = nodes_[n.left];
    n.maxGap = std::max(l.maxGap, n.lo - l.maxHi);
    n.firstLo = l.firstLo;
    n.maxHi = std::max(n.maxHi, l.maxHi);
  }
  if (n.right >= 0) {
    const Node &r = nodes_[n.right];
    n.maxGap = std::max({n.maxGap, r.maxGap, r.firstLo - n.maxHi});
    n.maxHi = std::max(n.maxHi, r.maxHi);
  }
}

// l: the nodes ordered at or before (lo, hi); r: the rest.
void ArenaPlacer::OffsetSet::split(int32_t t, int64_t lo, int64_t hi,
                                   int32_t &l, int32_t &r, int64_t align) {
  if (t < 0) {
    l = r = -1;
    return;
  }
  const Node &n = nodes_[t];
  if (n.lo < lo || (n.lo == lo && n.hi <= hi)) {
    split(n.right, lo, hi, nodes_[t].right, r, align);
    l = t;
  } else {
    split(n.left, lo, hi, l, nodes_[t].left, align);
    r = t;
  }
  pull(t, align);
}

// Puts node `id` into subtree t where its priority ranks it, after the nodes
// with equal keys: one path down and the split of what lies below it.
int32_t ArenaPlacer::OffsetSet::insertAt(int32_t t, int32_t id, int64_t align) {
  if (t < 0)
    return id;
  const Node &n = nodes_[t];
  const Node &m = nodes_[id];
  if (m.prio > n.prio) {
    split(t, m.lo, m.hi, nodes_[id].left, nodes_[id].right, align);
    pull(id, align);
    return id;
  }
  if (n.lo < m.lo || (n.lo == m.lo && n.hi <= m.hi))
    nodes_[t].right = insertAt(n.right, id, align);
  else
    nodes_[t].left = insertAt(n.left, id, align);
  pull(t, align);
  return t;
}

void ArenaPlacer::OffsetSet::insert(int64_t lo, int64_t hi, int64_t align) {
  const int32_t id = static_cast<int32_t>(nodes_.size());
  nodes_.push_back(Node{lo, hi, splitmix64(id), -1, -1, 0, 0, 0});
  pull(id, align);
  root_ = insertAt(root_, id, align);
}

bool ArenaPlacer::OffsetSet::fit(int32_t t, int64_t bytes, int64_t align,
                                 int64_t &off, int64_t &steps) const {
  if (t < 0)
    return false;
  ++steps;
  const Node &n = nodes_[t];
  if (n.maxHi <= off)
    return false; // all below: nothing to raise `off` past, nowhere to stop
  if (off + bytes <= n.firstLo)
    return true;
  if (n.maxGap < bytes) { // no gap inside fits: past all of it
    off = std::max(off, n.maxHi);
    return false;
  }
  if (fit(n.left, bytes, align, off, steps))
    return true;
  if (off + bytes <= n.lo)
    return true;
  off = std::max(off, alignUp(n.hi, align));
  return fit(n.right, bytes, align, off, steps);
}

bool ArenaPlacer::OffsetSet::raise(int64_t &off, int64_t bytes, int64_t align,
                                   int64_t &steps) const {
  const int64_t from = off;
  fit(root_, bytes, align, off, steps);
  return off != from;
}

ArenaPlacer::ArenaPlacer(int64_t align, int64_t steps) : align_(align) {
  int64_t span = 1;
  do {
    levels_.emplace_back((std::max<int64_t>(steps, 1) + span - 1) / span);
    span *= kFanout;
  } while (levels_.back().size() > 1);
}

template <typename F>
void ArenaPlacer::forEachCover(int64_t lo, int64_t hi, F &&f) {
  for (size_t k = 0; lo < hi; ++k, lo /= kFanout, hi /= kFanout) {
    for (; lo < hi && lo % kFanout != 0; ++lo)
      f(levels_[k][lo]);
    for (; lo < hi && hi % kFanout != 0;)
      f(levels_[k][--hi]);
  }
}

int64_t ArenaPlacer::place(int64_t begin, int64_t end, int64_t bytes) {
  // An empty buffer meets nothing (the scan put it at 0 too).
  if (bytes <= 0)
    return 0;
  // The sets whose buffers' lifetimes intersect [begin, end]: live over a
  // span holding `begin`, or born within (begin, end].
  std::vector<const OffsetSet *> sets;
  for (size_t k = 0, i = begin; k < levels_.size(); ++k, i /= kFanout)
    if (!levels_[k][i].live.empty())
      sets.push_back(&levels_[k][i].live);
  forEachCover(begin + 1, end + 1, [&](const Span &s) {
    if (!s.born.empty())
      sets.push_back(&s.born);
  });
  steps_ += static_cast<int64_t>(sets.size()) + 1;
  // Each set's answer at or above `off` is a lower bound of the answer; once
  // every set in turn leaves it where it is, `off` is free in all of them
  // (the set that moved it last is free there already).
  int64_t off = 0;
  for (size_t i = 0, quiet = 0; quiet < sets.size(); i = (i + 1) % sets.size())
    quiet = sets[i]->raise(off, bytes, align_, steps_) ? 1 : quiet + 1;
  const int64_t hi = off + bytes;
  forEachCover(begin, end + 1,
               [&](Span &s) { s.live.insert(off, hi, align_); });
  // (A span from step 0 never lies within (begin, end]: none is asked.)
  for (size_t k = 0, i = begin; k < levels_.size() && i > 0; ++k, i /= kFanout)
    levels_[k][i].born.insert(off, hi, align_);
  peak_ = std::max(peak_, hi);
  return off;
}

} // namespace galaxy
