// GALAXY_PROFILE=1: wall time per kernel (and GFLOP/s, from the FLOPs the plan
// counted for each instruction),
// accumulated by the CPU backend and printed as a table when it is destroyed.
// GALAXY_PROFILE=shapes keeps each kernel's operand shapes apart (e.g. the
// step's GEMMs one row per shape, to set against the same GEMM alone).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/backend.h"

namespace galaxy::rt::cpu {

class KernelProfile {
public:
  // True when GALAXY_PROFILE is set to anything but "" or "0".
  static bool enabledByEnv();
  // GALAXY_PROFILE=shapes: rows per kernel and operand shapes.
  static bool byShapeByEnv();

  // Forward and backward instances of one kernel are kept apart ("linear" vs
  // "linear (bwd)") because their shapes differ.
  // `shapes` (may be empty) is appended to the row's name.
  void record(const plan::Instr &instr, double seconds, double flops,
              const std::string &shapes = "");
  // Kernels by total time, with calls, share, mean and GFLOP/s.
  std::string table() const;
  bool empty() const { return stats_.empty(); }

private:
  struct Stat {
    int64_t calls = 0;
    double seconds = 0, flops = 0;
  };
  std::map<std::string, Stat> stats_;
};

} // namespace galaxy::rt::cpu
