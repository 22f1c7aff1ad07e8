// The plan format version galaxyc writes and galaxy-run accepts. Bump it on
// any change to plan.proto or to a kernel's meaning (docs/kernels.md).
#pragma once
#include <cstdint>

namespace galaxy::plan {
// 3: Plan.matmul_dtype; 4: Pipeline.tied (an older galaxy-run would not sum
// the copies' gradients, and they would drift apart); 5: Plan.compile_id (an
// older galaxy-run would let ranks of two compiles train together); 6:
// Instr.tile (an older galaxy-run would run each tile on the whole tensors);
// 7: Instr.coalesce (all-reduces summed as one collective).
inline constexpr uint32_t kPlanFormatVersion = 7;
} // namespace galaxy::plan
