// The per-job secret that every connection to the rendezvous store must prove
// it knows (store_protocol.h: a challenge-response, the token itself never
// crosses the network). The --nproc launcher generates one per run;
// manual and multi-host launches give it with GALAXY_JOB_TOKEN or
// --job-token-file (docs/launching.md).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace galaxy::comm {

// The environment variable that carries the token to every rank.
inline constexpr const char *kJobTokenEnv = "GALAXY_JOB_TOKEN";

// Longest token accepted (a file or variable holding more is a mistake).
inline constexpr size_t kMaxJobTokenBytes = 4096;

// n bytes from the kernel's random source (getrandom).
absl::StatusOr<std::string> randomBytes(size_t n);

// 32 random bytes as 64 hex digits.
absl::StatusOr<std::string> generateJobToken();

// The token in `path`: its content without trailing whitespace; an empty or
// over-long file is an error naming the path. `warning` is set when other
// users may read the file.
absl::StatusOr<std::string> readJobTokenFile(const std::string &path,
                                             std::string *warning);

} // namespace galaxy::comm
