// Branch-free exp/erf/tanh in f32 that the compiler can vectorise (libm's calls
// block vectorisation of the GELU, softmax and dropout loops). Errors are a few
// ulp for exp and ≤ 2e-7 absolute for erf and tanh — below the f32 noise of the
// training step.
#pragma once

#include <cstdint>
#include <cstring>

namespace galaxy::rt::cpu {

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// e^x: x = n·ln2 + r with |r| ≤ ln2/2, degree-6 Taylor/minimax for e^r, 2^n via
// the exponent.
inline float fastExp(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x); // keeps 2^n a normal float
  // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no rint
  // call needed).
  const float shifter = 12582912.f;
  const float t = x * 1.44269504089f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t e =
      static_cast<int32_t>(floatToBits(t) - floatToBits(shifter)); // = n
  return p * bitsToFloat(static_cast<uint32_t>((e + 127) << 23));
}

// erf(x), Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd-symmetric.
inline float fastErf(float x) {
  const float ax = x < 0.f ? -x : x;
  const float t = 1.f / (1.f + 0.3275911f * ax);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float y = 1.f - poly * t * fastExp(-ax * ax);
  return x < 0.f ? -y : y;
}

// tanh(x) = 1 − 2/(e^{2x} + 1), odd-symmetric (evaluated on |x| so e^{2|x|}
// never underflows).
inline float fastTanh(float x) {
  const float ax = x < 0.f ? -x : x;
  const float y = 1.f - 2.f / (fastExp(2.f * ax) + 1.f);
  return x < 0.f ? -y : y;
}

} // namespace galaxy::rt::cpu
