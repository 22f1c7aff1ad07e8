// AVX-512 building blocks of the bf16 kernels: fp32 -> bfloat16 rounding of
// 16 or 32 lanes in a register (the copies' refresh, bf16_copies.cc, and the
// kernels' packing and epilogues), and the shuffles that pack operands in
// the pairs vdpbf16ps multiplies (bf16_kernels.h).
#pragma once

#include <immintrin.h>

#include "runtime/cpu/avx512_lanes.h"

#include <algorithm>
#include <cstdint>

// What the kernels (and these helpers past roundedHalves) are compiled for;
// bf16KernelsAvailable checks the CPU has it.
#define GALAXY_BF16_TARGET                                                     \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace galaxy::rt::cpu {

// Two adjacent bfloat16 of a row read as the 32-bit word vdpbf16ps takes a
// pair in (the low half first); may alias the uint16_t storage it views.
typedef uint32_t __attribute__((__may_alias__)) Bf16PairWord;

// bf16RoundedBits on 16 lanes, the result in each lane's low half. Not
// vcvtneps2bf16: it reads subnormal inputs as zero, and these bits must equal
// the emulation's copies (roundToBf16).
__attribute__((target("avx512f"))) inline __m512i roundedHalves(__m512 v) {
  const __m512i abs = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000),
                quiet = _mm512_set1_epi32(0x00400000),
                half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i u = _mm512_castps_si512(v);
  // NaN: |u| above inf's bits (both below 2^31, so a signed compare).
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs), inf);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, half), lsb);
  r = _mm512_mask_or_epi32(r, nan, u, quiet);
  return _mm512_srli_epi32(r, 16);
}

// Lanes holding a subnormal (exponent bits zero, mantissa not), tested on
// the bits: vfpclassps reads them as zero under MXCSR.DAZ, which runs set.
GALAXY_BF16_TARGET inline __mmask16 subnormalLanes(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  return _mm512_mask_test_epi32_mask(
      _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)), u,
      _mm512_set1_epi32(0x007fffff));
}

// roundedHalves' bits narrowed to 16 lanes of 16 bits, by vcvtneps2bf16 (one
// instruction where roundedHalves and the narrowing take ~10) unless a lane
// is subnormal: it reads those as zero. NaN and the rest round alike (nearest
// even, NaN quieted by the same bit).
GALAXY_BF16_TARGET inline __m256i bf16Bits16(__m512 v) {
  if (subnormalLanes(v))
    return _mm512_cvtepi32_epi16(roundedHalves(v));
  return (__m256i)_mm512_cvtneps_pbh(v);
}

// bf16Bits16 of two vectors at once: lo's 16 lanes in the low 256 bits, hi's
// in the high (vcvtne2ps2bf16).
GALAXY_BF16_TARGET inline __m512i bf16Bits32(__m512 lo, __m512 hi) {
  if (subnormalLanes(lo) | subnormalLanes(hi))
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm512_cvtepi32_epi16(roundedHalves(lo))),
        _mm512_cvtepi32_epi16(roundedHalves(hi)), 1);
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// vdpbf16ps multiplies pairs of bfloat16 along the sum. Two rows of an
// operand that hold a pair's halves (r0: rows 2p, r1: 2p+1, null when past
// the end: zero), 16 columns from each, rounded: lane j holds (r0[j] bits) |
// (r1[j] bits) << 16; lanes at and past `valid` are zero.
GALAXY_BF16_TARGET inline __m512i bf16RowPair(const float *r0, const float *r1,
                                              int64_t valid) {
  const __mmask16 m = valid >= 16
                          ? __mmask16(0xffff)
                          : __mmask16((1u << std::max<int64_t>(valid, 0)) - 1);
  // Both rows rounded in one conversion (r0's lanes low, r1's high), then
  // each lane's two halves side by side.
  const __m512i interleave = _mm512_set_epi16(
      31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
      6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
  return _mm512_permutexvar_epi16(interleave,
                                  bf16Bits32(_mm512_maskz_loadu_ps(m, r0), hi));
}

} // namespace galaxy::rt::cpu
