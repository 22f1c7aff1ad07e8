// How a galaxy-run process finds its place in a multi-rank run: command-line
// flags (--rank/--world/--master), torchrun's environment, or a local launch
// that spawns N ranks and supervises them.
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::rt {

struct LaunchInfo {
  int rank = 0, world = 1, localRank = 0;
  std::string masterHost = "127.0.0.1";
  int masterPort = 0;
  // "flags", "environment (torchrun)" / "(Open MPI)" / "(MPICH/PMI)" /
  // "(Slurm)", or "default".
  std::string source = "default";
};

// What the command line said; unset = not given.
struct LaunchFlags {
  std::optional<int> rank, world;
  std::optional<std::string> master; // HOST:PORT
};

using EnvLookup = std::function<const char *(const char *)>;

// Flags win over torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
// LOCAL_RANK; with neither, rank 0 of 1. Mixing (e.g. --rank without --world)
// or a world > 1 without a master address is an error naming what is missing.
absl::StatusOr<LaunchInfo> resolveLaunch(const LaunchFlags &flags,
                                         const EnvLookup &env = std::getenv);

// "host:port" (the port 1..65535).
absl::StatusOr<std::pair<std::string, int>> parseHostPort(std::string_view s);

struct LocalRanksOptions {
  std::string exe;               // program to run for every rank
  std::vector<std::string> args; // its arguments, without launch flags
  int nproc = 1;
  std::string masterHost = "127.0.0.1";
  int masterPort = 0;                        // 0: pick a free loopback port
  std::chrono::milliseconds killGrace{2000}; // SIGTERM -> SIGKILL
  // Put in every rank's environment as GALAXY_JOB_TOKEN ("" = left alone).
  std::string jobToken;
};

// Runs `exe args... --rank r --world N --master HOST:PORT` for r < N (with
// LOCAL_RANK=r), forwarding each child's stdout / stderr line by line with a
// "[rank r] " prefix, and waits. Returns 0 when every rank exits 0. When a
// rank exits non-zero or dies, stops the others and returns 1 after printing
// which rank failed first — by time: a rank that was stopped (SIGSTOP) and
// still is when another fails is named first, since the others' failure is
// then waiting on it; the ranks the launcher stops itself are never blamed.
// SIGINT / SIGTERM to the launcher stop every rank and return 128 + the
// signal, saying the job was interrupted.
int runLocalRanks(const LocalRanksOptions &opts);

} // namespace galaxy::rt
