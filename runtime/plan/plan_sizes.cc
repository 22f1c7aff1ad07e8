#include "runtime/plan/plan_sizes.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/plan/size_limits.h"

namespace galaxy::plan {
namespace {

using Shape = google::protobuf::RepeatedField<int64_t>;

absl::Status bad(const std::string &origin, const std::string &what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

std::string shapeText(const Shape &s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

// Bytes of a tensor of `shape`, or the error naming `what`.
absl::StatusOr<int64_t> tensorBytes(const std::string &origin,
                                    const std::string &what,
                                    const Shape &shape) {
  for (int64_t d : shape)
    if (d < 0)
      return bad(origin, absl::StrCat(what, " has shape ", shapeText(shape),
                                      ", with a negative dimension"));
  std::optional<int64_t> bytes = checkedTensorBytes(shape);
  if (!bytes)
    return bad(origin, absl::StrCat(what, " has shape ", shapeText(shape),
                                    ", more than ", kMaxTensorElements,
                                    " elements (2^40)"));
  return *bytes;
}

absl::Status nonNegative(const std::string &origin, const std::string &what,
                         const Shape &values) {
  for (int64_t v : values)
    if (v < 0)
      return bad(origin, absl::StrCat(what, " ", shapeText(values),
                                      " has a negative entry"));
  return absl::OkStatus();
}

// a + b into `sum`, failing past kMaxPlanBytes.
absl::Status addBytes(const std::string &origin, const std::string &what,
                      int64_t bytes, int64_t &sum) {
  std::optional<int64_t> s = checkedAdd(sum, bytes);
  if (!s || *s > kMaxPlanBytes)
    return bad(origin, absl::StrCat("the plan's ", what, " exceed ",
                                    kMaxPlanBytes, " bytes (2^46)"));
  sum = *s;
  return absl::OkStatus();
}

#define GALAXY_PLAN_TRY(expr)                                                  \
  do {                                                                         \
    absl::Status s_ = (expr);                                                  \
    if (!s_.ok())                                                              \
      return s_;                                                               \
  } while (0)

} // namespace

absl::StatusOr<PlanMemory> checkPlanSizes(const Plan &p,
                                          const std::string &origin) {
  const ModelInfo &m = p.model();
  for (auto [name, v] : {std::pair{"batch_size", m.batch_size()},
                         std::pair{"seq_len", m.seq_len()},
                         std::pair{"num_classes", m.num_classes()},
                         std::pair{"vocab_size", m.vocab_size()}})
    if (v < 0 || v > kMaxDimension)
      return bad(origin, absl::StrCat("model ", name, " = ", v,
                                      " is outside [0, ", kMaxDimension, "]"));
  PlanMemory mem;
  for (auto [what, v] : {std::pair{"arena_bytes", p.arena_bytes()},
                         std::pair{"unshared_bytes", p.unshared_bytes()}})
    if (v < 0 || v > kMaxPlanBytes)
      return bad(origin, absl::StrCat(what, " = ", v, " is outside [0, ",
                                      kMaxPlanBytes, "]"));
  for (const Program &prog : p.programs())
    if (prog.arena_bytes() < 0 || prog.arena_bytes() > p.arena_bytes())
      return bad(origin,
                 absl::StrCat("program ", prog.name(),
                              " arena_bytes = ", prog.arena_bytes(),
                              " is outside [0, ", p.arena_bytes(), "]"));
  mem.arena = p.arena_bytes();
  if (const Pipeline &pp = p.pipeline(); pp.num_stages() > 0) {
    std::optional<int64_t> stash =
        pp.slots() >= 0 && pp.stash_slot_bytes() >= 0
            ? checkedMul(pp.slots(), pp.stash_slot_bytes())
            : std::nullopt;
    if (!stash || *stash > kMaxPlanBytes)
      return bad(origin,
                 absl::StrCat("the pipeline's ", pp.slots(), " stash slots of ",
                              pp.stash_slot_bytes(), " bytes are outside [0, ",
                              kMaxPlanBytes, "] bytes"));
    mem.stash = *stash;
  }

  for (const Param &q : p.params()) {
    const std::string what = absl::StrCat("parameter ", q.name());
    absl::StatusOr<int64_t> bytes = tensorBytes(origin, what, q.slice_shape());
    if (!bytes.ok())
      return bytes.status();
    GALAXY_PLAN_TRY(
        tensorBytes(origin, what + " (global)", q.global_shape()).status());
    GALAXY_PLAN_TRY(
        nonNegative(origin, what + " slice_offset", q.slice_offset()));
    GALAXY_PLAN_TRY(addBytes(origin, "parameters", *bytes, mem.params));
  }
  for (const Buffer &b : p.buffers()) {
    const std::string what = absl::StrCat("buffer ", b.name());
    absl::StatusOr<int64_t> bytes = tensorBytes(origin, what, b.shape());
    if (!bytes.ok())
      return bytes.status();
    GALAXY_PLAN_TRY(
        tensorBytes(origin, what + " (global)", b.global_shape()).status());
    GALAXY_PLAN_TRY(
        nonNegative(origin, what + " slice_offset", b.slice_offset()));
    std::optional<int64_t> end = checkedAdd(b.offset(), *bytes);
    if (b.offset() < 0 || !end || *end > kMaxPlanBytes)
      return bad(origin, absl::StrCat(what, " lies at byte offset ", b.offset(),
                                      ", outside [0, ", kMaxPlanBytes, "]"));
    if (b.kind() == Buffer::OPT_STATE)
      GALAXY_PLAN_TRY(
          addBytes(origin, "optimizer state", *bytes, mem.optimizerState));
    else if (b.kind() == Buffer::INPUT && !b.stash())
      GALAXY_PLAN_TRY(addBytes(origin, "inputs", *bytes, mem.inputs));
  }
  for (int64_t part :
       {mem.arena, mem.stash, mem.params, mem.optimizerState, mem.inputs})
    GALAXY_PLAN_TRY(addBytes(origin, "buffers together", part, mem.total));
  return mem;
}

absl::StatusOr<PlanMemory> checkLoadedPlanSizes(const Plan &p,
                                                const std::string &origin) {
  absl::StatusOr<PlanMemory> mem = checkPlanSizes(p, origin);
  if (!mem.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(mem.status().message(),
                     "; the plan is damaged or was not written by galaxyc: "
                     "recompile it"));
  return mem;
}

} // namespace galaxy::plan
