// fp32 -> bfloat16 operand conversion for bf16 plans' GEMMs (ops_gemm.cc).
#include "runtime/cpu/bf16_bits.h"
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

// The CPU's rounding (bf16_bits.h), so both backends multiply identical bf16
// operands.
__global__ void toBf16K(const float *x, uint16_t *y, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) {
    y[i] = static_cast<uint16_t>(bf16RoundedBits(__float_as_uint(x[i])) >> 16);
  }
}

} // namespace

int launchToBf16(const float *x, uint16_t *y, int64_t n, Stream s) {
  toBf16K<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
