// The plan's memory need against the machine's, before anything is
// allocated: a model that cannot fit is refused with both figures instead
// of being OOM-killed minutes later with no message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/plan/plan_sizes.h"

namespace galaxy::run {

// MemAvailable of /proc/meminfo in bytes; nullopt when it cannot be read.
std::optional<int64_t> availableMemoryBytes();

// Fails (exit 2) when `need` (what `ranks` ranks of `plan` allocate on this
// host, host memory) exceeds the available memory, naming both figures and
// the parts of the need. GALAXY_SKIP_MEMORY_CHECK=1 skips it (swap, or
// memory freed by the time the buffers are touched).
void checkMemory(const plan::PlanMemory &need, const std::string &plan,
                 int ranks);

// The same for --backend cuda, where the executor places every buffer of the
// need in the memory of GPU `device` (freeBytes of totalBytes free).
void checkDeviceMemory(const plan::PlanMemory &need, const std::string &plan,
                       int device, int64_t freeBytes, int64_t totalBytes);

} // namespace galaxy::run
