#include "runtime/exec/box_copy.h"

#include <cstring>

namespace galaxy::rt {

int64_t product(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

bool boxInside(std::span<const int64_t> full, std::span<const int64_t> offset,
               std::span<const int64_t> box) {
  if (offset.size() != full.size() || box.size() != full.size())
    return false;
  for (size_t d = 0; d < full.size(); ++d)
    if (offset[d] < 0 || box[d] < 0 || offset[d] + box[d] > full[d])
      return false;
  return true;
}

namespace {
// Walks the box as contiguous runs: trailing dims the box covers completely
// merge into one run, so a shard of dim k copies box[k]*post elements at once.
template <typename Fn>
void forEachRun(std::span<const int64_t> full, std::span<const int64_t> offset,
                std::span<const int64_t> box, Fn fn) {
  const int rank = static_cast<int>(full.size());
  if (product(box) == 0)
    return;
  if (rank == 0) {
    fn(0, 0, 1);
    return;
  }
  int k = rank - 1; // innermost dim the box does not cover fully
  while (k > 0 && box[k] == full[k])
    --k;
  std::vector<int64_t> stride(rank, 1);
  for (int d = rank - 2; d >= 0; --d)
    stride[d] = stride[d + 1] * full[d + 1];
  const int64_t run = box[k] * stride[k];
  std::vector<int64_t> idx(k, 0);
  int64_t boxPos = 0;
  while (true) {
    int64_t fullPos = offset[k] * stride[k];
    for (int d = 0; d < k; ++d)
      fullPos += (offset[d] + idx[d]) * stride[d];
    fn(fullPos, boxPos, run);
    boxPos += run;
    int d = k - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < box[d])
        break;
      idx[d] = 0;
    }
    if (d < 0)
      return;
  }
}
} // namespace

void extractBox(const void *src, std::span<const int64_t> full,
                std::span<const int64_t> offset, std::span<const int64_t> box,
                void *dst, size_t elemSize) {
  const char *s = static_cast<const char *>(src);
  char *o = static_cast<char *>(dst);
  forEachRun(full, offset, box,
             [&](int64_t fullPos, int64_t boxPos, int64_t n) {
               std::memcpy(o + boxPos * elemSize, s + fullPos * elemSize,
                           n * elemSize);
             });
}

void insertBox(const void *src, std::span<const int64_t> box, void *dst,
               std::span<const int64_t> full, std::span<const int64_t> offset,
               size_t elemSize) {
  const char *s = static_cast<const char *>(src);
  char *o = static_cast<char *>(dst);
  forEachRun(full, offset, box,
             [&](int64_t fullPos, int64_t boxPos, int64_t n) {
               std::memcpy(o + fullPos * elemSize, s + boxPos * elemSize,
                           n * elemSize);
             });
}

} // namespace galaxy::rt
