// Rotary position embedding's angles and rotation, shared by the CPU and CUDA
// kernels so both compute Hugging Face's fp32 values bit for bit: the
// LlamaRotaryEmbedding computes inv_freq = 1 / theta^(2i/d) with the exponent
// and the power in fp32, the angle position·inv_freq in fp32, and cos / sin of
// that fp32 angle in fp32; q·cos + rotate_half(q)·sin rounds each product
// before the sum. Powers, cosines and sines are taken in double and rounded
// once (correctly rounded fp32 results; torch's fp32 functions are within an
// ulp of them). Positions are exact in fp32 below 2^24.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/cpu/host_device.h"

namespace galaxy::rt::rope {

GALAXY_HOST_DEVICE inline float invFreq(double theta, int64_t i, int64_t d) {
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
  const double base = static_cast<float>(theta);
  return 1.f / static_cast<float>(::pow(base, static_cast<double>(exponent)));
}

// cos and sin of the fp32 angle position·invFreq; sin negated for the inverse
// rotation.
struct CosSin {
  float c, s;
};
GALAXY_HOST_DEVICE inline CosSin cosSin(int64_t position, float invFreq,
                                        bool inverse) {
  const double a = static_cast<float>(position) * invFreq;
  const float s = static_cast<float>(::sin(a));
  return {static_cast<float>(::cos(a)), inverse ? -s : s};
}

// Products rounded before the sum (no fused multiply-add), as torch computes
// q·cos + rotate_half(q)·sin.
GALAXY_HOST_DEVICE inline float mulRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
GALAXY_HOST_DEVICE inline float addRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// The pair (x1 = x[i], x2 = x[i + d/2]) rotated: y1 = x1·c − x2·s,
// y2 = x2·c + x1·s.
GALAXY_HOST_DEVICE inline void rotate(float x1, float x2, CosSin cs, float &y1,
                                      float &y2) {
  y1 = addRn(mulRn(x1, cs.c), -mulRn(x2, cs.s));
  y2 = addRn(mulRn(x2, cs.c), mulRn(x1, cs.s));
}

} // namespace galaxy::rt::rope
