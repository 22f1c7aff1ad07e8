// fp32 -> bfloat16 operand conversion for bf16 plans' GEMMs (ops_gemm.cc).
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/launchers.h"

namespace galaxy::rt::cuda {
namespace {

// The same bit rounding as the CPU's roundToBf16 (runtime/cpu/vector_loops.cc:
// nearest, ties to even; NaN quietened, never turned into inf), so both
// backends multiply identical bf16 operands.
__global__ void toBf16K(const float *x, uint16_t *y, int64_t n) {
  GALAXY_GRID_STRIDE(i, n) {
    const uint32_t u = __float_as_uint(x[i]);
    const uint32_t r = (u & 0x7fffffffu) > 0x7f800000u
                           ? (u | 0x00400000u)
                           : u + 0x7fffu + ((u >> 16) & 1u);
    y[i] = static_cast<uint16_t>(r >> 16);
  }
}

} // namespace

int launchToBf16(const float *x, uint16_t *y, int64_t n, Stream s) {
  toBf16K<<<gridFor(n), kThreads, 0, asStream(s)>>>(x, y, n);
  return launchStatus();
}

} // namespace galaxy::rt::cuda
