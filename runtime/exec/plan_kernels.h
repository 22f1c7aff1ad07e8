// Refusing a plan at load time when it names a kernel this build cannot run,
// so a mismatch surfaces before the first step rather than in the middle of
// one.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "runtime/backend.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {

// Every instruction's kernel is in the kernel schema (else FailedPrecondition:
// the plan comes from another galaxyc) and, unless the executor runs it
// (data movement), implemented by `backend` (else Unimplemented naming the
// kernel, its program, instruction and block, and the backend). `origin`
// names the plan in messages.
absl::Status checkPlanKernels(const plan::Plan &plan, const Backend &backend,
                              std::string_view origin);

} // namespace galaxy::rt
