// PipelineDriver::saveParams / gatherToLead: every stage leader's gathered
// parameters (and, for checkpoints, optimizer state) go to world rank 0,
// which writes them as one safetensors file.
#include <algorithm>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/exec/pipeline_driver.h"
#include "runtime/exec/pipeline_internal.h"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

using pipeline_detail::kSaveTag;

absl::Status PipelineDriver::saveParams(const std::string &path) {
  absl::StatusOr<Executor::GatheredParams> all = gatherToLead(false);
  if (!all.ok())
    return all.status();
  if ((world_ ? world_->rank() : 0) != 0)
    return absl::OkStatus();
  return io::writeSafetensors(path, all->tensors,
                              {{"format", "pt"}, {"producer", "galaxy-run"}});
}

absl::StatusOr<Executor::GatheredParams>
PipelineDriver::gatherToLead(bool withOptState) {
  absl::StatusOr<Executor::GatheredParams> g = ex_.gatherParams(withOptState);
  if (!g.ok())
    return g.status();
  const int me = world_ ? world_->rank() : 0;
  const bool leader = groupRank_ == 0;
  auto numel = [](const std::vector<int64_t> &shape) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  };
  // Stage leaders ship (name, shape, data) to world rank 0: a header of
  // int32 [count, then per tensor: name length, rank, dims..., name bytes],
  // then each tensor's floats.
  if (leader && me != 0) {
    std::vector<int32_t> header = {int32_t(g->tensors.size())};
    for (const io::TensorToWrite &t : g->tensors) {
      header.push_back(int32_t(t.name.size()));
      header.push_back(int32_t(t.shape.size()));
      for (int64_t d : t.shape) {
        if (d > INT32_MAX)
          return absl::OutOfRangeError(
              absl::StrCat("parameter ", t.name, " has a dimension of ", d,
                           ", too large to ship to world rank 0"));
        header.push_back(int32_t(d));
      }
      header.insert(header.end(), t.name.begin(), t.name.end());
    }
    int32_t n = int32_t(header.size());
    absl::Status s = world_->send(&n, 1, 0, kSaveTag);
    if (s.ok())
      s = world_->send(header.data(), header.size(), 0, kSaveTag);
    for (size_t i = 0; s.ok() && i < g->tensors.size(); ++i)
      s = world_->send(static_cast<const float *>(g->tensors[i].data),
                       numel(g->tensors[i].shape), 0, kSaveTag);
    if (!s.ok())
      return absl::Status(
          s.code(), absl::StrCat(who(stage_),
                                 ": sending the parameters to world rank 0: ",
                                 s.message()));
    return Executor::GatheredParams{};
  }
  if (me != 0)
    return Executor::GatheredParams{};
  std::vector<io::TensorToWrite> &all = g->tensors;
  // Name -> (stage, shape, data) of the copy written.
  struct Seen {
    int stage;
    std::vector<int64_t> shape;
    const float *data;
  };
  std::map<std::string, Seen> seen;
  for (const io::TensorToWrite &t : all)
    seen[t.name] = {stage_, t.shape, static_cast<const float *>(t.data)};
  // Received tensors live in g->owned: moving a vector keeps its data where
  // `all` points.
  std::vector<std::vector<float>> &storage = g->owned;
  for (int s = 1; s < stages_; ++s) {
    const int from = s * groupSize_;
    auto failed = [&](const absl::Status &st) {
      return absl::Status(
          st.code(),
          absl::StrCat("world rank 0: receiving the parameters of ", "stage ",
                       s, " (world rank ", from, "): ", st.message()));
    };
    int32_t n = 0;
    if (absl::Status st = world_->recv(&n, 1, from, kSaveTag); !st.ok())
      return failed(st);
    std::vector<int32_t> header(std::max(n, 0));
    if (absl::Status st =
            world_->recv(header.data(), header.size(), from, kSaveTag);
        !st.ok())
      return failed(st);
    size_t at = 0;
    auto next = [&]() -> absl::StatusOr<int32_t> {
      if (at >= header.size())
        return absl::DataLossError(
            absl::StrCat("stage ", s, "'s parameter list is truncated (",
                         header.size(), " entries)"));
      return header[at++];
    };
    auto count = next();
    if (!count.ok())
      return count.status();
    for (int32_t t = 0; t < *count; ++t) {
      auto len = next(), rank = next();
      if (!len.ok() || !rank.ok())
        return len.ok() ? rank.status() : len.status();
      std::vector<int64_t> shape;
      for (int32_t d = 0; d < *rank; ++d) {
        auto v = next();
        if (!v.ok())
          return v.status();
        shape.push_back(*v);
      }
      std::string name;
      for (int32_t c = 0; c < *len; ++c) {
        auto v = next();
        if (!v.ok())
          return v.status();
        name.push_back(char(*v));
      }
      std::vector<float> &data = storage.emplace_back(numel(shape));
      if (absl::Status st =
              world_->recv(data.data(), data.size(), from, kSaveTag);
          !st.ok())
        return failed(st);
      // A parameter held by two stages (tied weights, Pipeline.tied) is
      // written once: the copy of the lowest stage holding it. The copies
      // took the same steps, so they must be equal to the bit.
      if (auto it = seen.find(name); it != seen.end()) {
        if (it->second.shape != shape)
          return absl::FailedPreconditionError(absl::StrCat(
              "parameter ", name, " is held by two stages with shapes [",
              absl::StrJoin(it->second.shape, ", "), "] and [",
              absl::StrJoin(shape, ", "), "]; recompile the plans"));
        const int64_t differ =
            std::mismatch(data.begin(), data.end(), it->second.data).first -
            data.begin();
        if (differ < int64_t(data.size()))
          return absl::InternalError(absl::StrCat(
              "the copies of tied parameter ", name, " on stages ",
              it->second.stage, " and ", s, " differ (first at element ",
              differ, ": ", it->second.data[differ], " vs ", data[differ],
              "): their gradients were not summed (Pipeline.tied); nothing "
              "written"));
        continue;
      }
      seen[name] = {s, shape, data.data()};
      all.push_back({name, io::StDType::F32, shape, data.data()});
    }
  }
  return std::move(*g);
}

} // namespace galaxy::rt
