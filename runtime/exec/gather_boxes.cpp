#include "runtime/exec/gather_boxes.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/exec/box_copy.h"

namespace galaxy::rt {

absl::StatusOr<std::vector<float>>
gatherBoxes(comm::Communicator &comm, const float *local,
            const std::vector<int64_t> &global,
            const std::vector<int64_t> &offset,
            const std::vector<int64_t> &shape, std::string_view what) {
  const int world = comm.size();
  const size_t nd = global.size();
  // Everyone's box first: offsets then extents, nd each (int32 is plenty for
  // one dimension of a tensor).
  std::vector<int32_t> mine;
  for (size_t d = 0; d < nd; ++d)
    mine.push_back(static_cast<int32_t>(d < offset.size() ? offset[d] : 0));
  for (size_t d = 0; d < nd; ++d)
    mine.push_back(
        static_cast<int32_t>(d < shape.size() ? shape[d] : global[d]));
  std::vector<int32_t> boxes(2 * nd * world);
  std::vector<size_t> metaCounts(world, 2 * nd);
  if (absl::Status s =
          comm.allGatherV(mine.data(), mine.size(), boxes.data(), metaCounts);
      !s.ok())
    return s;

  std::vector<size_t> counts(world);
  std::vector<std::vector<int64_t>> offs(world), exts(world);
  for (int r = 0; r < world; ++r) {
    const int32_t *b = &boxes[2 * nd * r];
    offs[r].assign(b, b + nd);
    exts[r].assign(b + nd, b + 2 * nd);
    if (!boxInside(global, offs[r], exts[r]))
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(what), ": rank ", r, "'s slice at [",
          absl::StrJoin(offs[r], ", "), "] of shape [",
          absl::StrJoin(exts[r], ", "), "] lies outside the global shape [",
          absl::StrJoin(global, ", "), "]; the plans disagree"));
    counts[r] = static_cast<size_t>(product(exts[r]));
  }
  size_t total = 0;
  for (size_t c : counts)
    total += c;
  std::vector<float> all(total);
  // Bit-exact transport: the i32 overload moves the 4-byte words unchanged.
  if (absl::Status s = comm.allGatherV(
          reinterpret_cast<const int32_t *>(local), counts[comm.rank()],
          reinterpret_cast<int32_t *>(all.data()), counts);
      !s.ok())
    return s;

  std::vector<float> out(product(global), 0.0f);
  std::vector<char> covered(out.size(), 0);
  std::vector<char> ones;
  size_t pos = 0;
  for (int r = 0; r < world; ++r) {
    insertBox(all.data() + pos, exts[r], out.data(), global, offs[r], 4);
    ones.assign(counts[r], 1);
    insertBox(ones.data(), exts[r], covered.data(), global, offs[r], 1);
    pos += counts[r];
  }
  const auto missing = std::count(covered.begin(), covered.end(), 0);
  if (missing > 0)
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(what), ": the ranks' slices leave ", missing, " of ",
        out.size(), " elements of [", absl::StrJoin(global, ", "),
        "] uncovered; the plans disagree"));
  return out;
}

} // namespace galaxy::rt
