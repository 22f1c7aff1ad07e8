// fp32 -> bfloat16 rounding of 16 lanes at once (AVX-512; bf16Bits16 also
// AVX512-BF16), for the kernels that round in a register: the copies' refresh
// (bf16_copies.cc) and the weight-gradient kernel's packing and epilogue
// (bf16_weight_grad.cc).
#pragma once

#include <immintrin.h>

namespace galaxy::rt::cpu {

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

// roundedHalves' bits narrowed to 16 lanes of 16 bits, by vcvtneps2bf16 (one
// instruction where roundedHalves and the narrowing take ~10) unless a lane
// is subnormal: it reads those as zero. NaN and the rest round alike (nearest
// even, NaN quieted by the same bit).
__attribute__((
    target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) inline __m256i
bf16Bits16(__m512 v) {
  if (_mm512_fpclass_ps_mask(v, 0x20)) // 0x20: subnormal
    return _mm512_cvtepi32_epi16(roundedHalves(v));
  return (__m256i)_mm512_cvtneps_pbh(v);
}

// bf16Bits16 of two vectors at once: lo's 16 lanes in the low 256 bits, hi's
// in the high (vcvtne2ps2bf16).
__attribute__((
    target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) inline __m512i
bf16Bits32(__m512 lo, __m512 hi) {
  if (_mm512_fpclass_ps_mask(lo, 0x20) | _mm512_fpclass_ps_mask(hi, 0x20))
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm512_cvtepi32_epi16(roundedHalves(lo))),
        _mm512_cvtepi32_epi16(roundedHalves(hi)), 1);
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

} // namespace galaxy::rt::cpu
