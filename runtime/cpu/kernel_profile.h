// GALAXY_PROFILE=1: wall time per kernel (and GFLOP/s of the GEMM kernels),
// accumulated by the CPU backend and printed as a table when it is destroyed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/backend.h"

namespace galaxy::rt::cpu {

// Multiply-adds ×2 of the matmul-like kernels (linear, linear_weight_grad,
// matmul); 0 for every other kernel or for shapes it cannot read.
double kernelFlops(const plan::Instr &instr, const std::vector<Tensor> &in,
                   const std::vector<Tensor> &out);

class KernelProfile {
public:
  // True when GALAXY_PROFILE is set to anything but "" or "0".
  static bool enabledByEnv();

  // Forward and backward instances of one kernel are kept apart ("linear" vs
  // "linear (bwd)") because their shapes differ.
  void record(const plan::Instr &instr, double seconds, double flops);
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
