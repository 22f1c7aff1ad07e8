// fp32 -> bfloat16 rounding on the bits, shared by the CPU (roundToBf16) and
// CUDA (bf16.cu) backends so both multiply identical bf16 operands.
#pragma once

#include <stdint.h>

#include "runtime/cpu/host_device.h"

namespace galaxy::rt {

// The fp32 bits of x rounded to bfloat16 (nearest, ties to even), low 16 bits
// zero. Adding 0x7fff plus the lowest kept bit carries into the kept half
// exactly when the dropped half is above one half, or equal to it with an odd
// kept half; a carry out of the mantissa bumps the exponent, which is the
// right rounding up to and including inf. NaN would round to inf, so it only
// gets its quiet bit set (a kept bit).
GALAXY_HOST_DEVICE inline uint32_t bf16RoundedBits(uint32_t u) {
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (u | 0x00400000u) & 0xffff0000u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}

} // namespace galaxy::rt
