// Reference scalar conversions between fp32 and the two 16-bit float formats (IEEE half, bfloat16).
// Every function here has internal linkage (static inline) on purpose: this header is included by translation units
// compiled with different ISA flags, and a shared out-of-line copy could be picked from an AVX-512 object at link time.
#pragma once

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

static inline uint32_t aglm_fp32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float aglm_fp32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

// Exact: every half value is a float.
static inline float aglm_fp16_to_fp32(aglm_fp16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return aglm_fp32_from_bits(sign | 0x7f800000u | (man << 13)); // inf, nan (payload kept)
  if (exp != 0) return aglm_fp32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
  const float sub = (float)man * (1.0f / 16777216.0f); // subnormal or zero: man * 2^-24, exact
  return sign ? -sub : sub;
}

// Below 2^-14 (the smallest normal half): round |x| to a multiple of 2^-24, ties to even.
static inline uint32_t aglm_fp16_subnormal_from_bits(uint32_t ax) {
  if (ax < 0x33000000u) return 0; // below 2^-25: rounds to zero
  const uint32_t e = ax >> 23;    // 102..112
  const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e; // 14..24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return q; // may reach 0x400, the smallest normal, which is the right encoding
}

// Round to nearest, ties to even; overflow gives inf; NaN stays NaN (quieted, top payload bits kept).
static inline aglm_fp16_t aglm_fp32_to_fp16(float f) {
  const uint32_t x = aglm_fp32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (aglm_fp16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x47800000u) return (aglm_fp16_t)(sign | 0x7c00u); // >= 65536 (and inf)
  if (ax < 0x38800000u) return (aglm_fp16_t)(sign | aglm_fp16_subnormal_from_bits(ax));
  uint32_t h = (ax >> 13) - (112u << 10); // rebias the exponent 127 -> 15
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; // a carry into the exponent is correct (up to inf)
  return (aglm_fp16_t)(sign | h);
}

// Exact.
static inline float aglm_bf16_to_fp32(aglm_bf16_t b) { return aglm_fp32_from_bits((uint32_t)b << 16); }

// Round to nearest, ties to even; NaN stays NaN (quiet bit set so no NaN turns into inf).
static inline aglm_bf16_t aglm_fp32_to_bf16(float f) {
  const uint32_t x = aglm_fp32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (aglm_bf16_t)((x >> 16) | 0x40u);
  return (aglm_bf16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
