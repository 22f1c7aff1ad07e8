// Helpers shared by the PipelineDriver's files (pipeline_driver.cpp,
// pipeline_checks.cpp, pipeline_save.cpp); not part of the runtime's API.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt::pipeline_detail {

// Channel messages are tagged with their microbatch index; these tags lie
// far above any, for the boundary handshake (on the channels) and for the
// eval results and saved parameters (on the world, which carries no other
// point-to-point traffic).
inline constexpr uint32_t kHandshakeTag = 0x50500000u;
inline constexpr uint32_t kEvalTag = 0x50500001u;
inline constexpr uint32_t kSaveTag = 0x50500002u;

inline std::string programName(const char *kind, int64_t rows) {
  return absl::StrCat(kind, ".b", rows);
}

inline int64_t elements(const plan::Buffer &b) {
  int64_t n = 1;
  for (int64_t d : b.global_shape_size() > 0 ? b.global_shape() : b.shape())
    n *= d;
  return n;
}

// Elements of the global tensor bound to `name` among `program`'s inputs
// (or outputs); -1 when the program has no such binding.
inline int64_t boundElements(const plan::Plan &plan,
                             const plan::Program *program,
                             const std::string &name, bool input) {
  if (!program)
    return -1;
  for (const plan::Binding &b : input ? program->inputs() : program->outputs())
    if (b.name() == name)
      return elements(plan.buffers(b.buffer()));
  return -1;
}

// The batch fields `plan` reads as 0-d inputs (values of the whole batch,
// such as num_targets), which the driver must not slice by rows.
inline std::set<std::string> wholeBatchFields(const plan::Plan &plan) {
  std::set<std::string> out;
  for (const plan::Program &p : plan.programs())
    for (const plan::Binding &b : p.inputs()) {
      const plan::Buffer &buf = plan.buffers(b.buffer());
      if (buf.shape_size() == 0 && buf.global_shape_size() == 0)
        out.insert(b.name());
    }
  return out;
}

} // namespace galaxy::rt::pipeline_detail
