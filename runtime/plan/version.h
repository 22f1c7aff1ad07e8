// The plan format version galaxyc writes and galaxy-run accepts. Bump it on
// any change to plan.proto or to a kernel's meaning (docs/kernels.md).
#pragma once
#include <cstdint>

namespace galaxy::plan {
inline constexpr uint32_t kPlanFormatVersion = 3; // 3: Plan.matmul_dtype
} // namespace galaxy::plan
