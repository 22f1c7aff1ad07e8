// Philox4x32-10 (Salmon et al., SC'11) and the dropout addressing of
// docs/kernels.md. Header-only and free of std:: so a CUDA backend can include
// it unchanged: under nvcc the functions become __host__ __device__.
#pragma once

#include <stdint.h>

#include "runtime/cpu/host_device.h"

namespace galaxy::rt {

// Philox4x32's round multipliers and key increments (Weyl constants); the
// vectorised copies in vector_loops.cc use them too.
inline constexpr uint32_t kPhiloxMul0 = 0xD2511F53u, kPhiloxMul1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxWeyl0 = 0x9E3779B9u,
                          kPhiloxWeyl1 = 0xBB67AE85u;

struct Philox4x32Words {
  uint32_t w[4];
};

// One Philox4x32 block: 10 rounds over counter (c0..c3) with key (k0, k1).
GALAXY_HOST_DEVICE inline Philox4x32Words
philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
              uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { // the key is bumped between rounds, not before the first
      k0 += kPhiloxWeyl0;
      k1 += kPhiloxWeyl1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxMul1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32),
                   lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32),
                   lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  Philox4x32Words out;
  out.w[0] = c0;
  out.w[1] = c1;
  out.w[2] = c2;
  out.w[3] = c3;
  return out;
}

// The four words shared by global elements 4q .. 4q+3 (q = g >> 2) of one
// dropout op.
GALAXY_HOST_DEVICE inline Philox4x32Words
dropoutBlock(uint64_t seed, uint64_t step, uint32_t op_id, uint64_t q) {
  return philox4x32_10(static_cast<uint32_t>(q), static_cast<uint32_t>(q >> 32),
                       static_cast<uint32_t>(step),
                       static_cast<uint32_t>(seed >> 32),
                       static_cast<uint32_t>(seed), op_id);
}

// u in [0, 1) from one Philox word: its top 24 bits times 2^-24 (exact in f32).
GALAXY_HOST_DEVICE inline float philoxUniform(uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// u for the element with global row-major index g.
GALAXY_HOST_DEVICE inline float dropoutUniform(uint64_t seed, uint64_t step,
                                               uint32_t op_id, uint64_t g) {
  return philoxUniform(dropoutBlock(seed, step, op_id, g >> 2).w[g & 3]);
}

} // namespace galaxy::rt
