// The plan format version galaxyc writes and galaxy-run accepts. Bump it on
// any change to plan.proto or to a kernel's meaning (docs/kernels.md).
#pragma once
#include <cstdint>

namespace galaxy::plan {
// 3: Plan.matmul_dtype; 4: Pipeline.tied (an older galaxy-run would not sum
// the copies' gradients, and they would drift apart).
inline constexpr uint32_t kPlanFormatVersion = 4;
} // namespace galaxy::plan
