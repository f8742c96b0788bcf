// NEON vector helpers private to the neon sources: partial loads and stores, expf. Internal linkage only.
#pragma once

#include <arm_neon.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// Full unrolling of the small register-tile loops, so arrays of accumulators stay in registers.
#ifndef AGLM_UNROLL
#if defined(__clang__)
#define AGLM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define AGLM_UNROLL _Pragma("GCC unroll 16")
#else
#define AGLM_UNROLL
#endif
#endif

namespace {

// n < 4 floats from p, zero-padded (nothing read past them).
inline float32x4_t aglm_f32_part(const float *p, int64_t n) {
  float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  memcpy(tmp, p, (size_t)n * sizeof(float));
  return vld1q_f32(tmp);
}

// The first n < 4 lanes of v to p (nothing written past them).
inline void aglm_f32_part_store(float *p, float32x4_t v, int64_t n) {
  float tmp[4];
  vst1q_f32(tmp, v);
  memcpy(p, tmp, (size_t)n * sizeof(float));
}

// n < 4 16-bit values from p, zero-padded.
inline uint16x4_t aglm_u16_part(const uint16_t *p, int64_t n) {
  uint16_t tmp[4] = {0, 0, 0, 0};
  memcpy(tmp, p, (size_t)n * 2);
  return vld1_u16(tmp);
}

// IEEE half bit patterns to floats (FCVTL: exact, subnormals included).
inline float32x4_t aglm_h4_to_f32(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }

inline float aglm_h_to_f32(const void *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return vgetq_lane_f32(aglm_h4_to_f32(vdup_n_u16(h)), 0);
}

// bfloat16 bit patterns to floats: a 16-bit shift, exact.
inline float32x4_t aglm_b4_to_f32(uint16x4_t b) { return vreinterpretq_f32_u32(vshll_n_u16(b, 16)); }

// 2^n for integer-valued n in [-126, 127] (float lanes).
inline float32x4_t aglm_pow2i4(float32x4_t n) {
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
}

// e^x within ~2 ulp: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial, 2^n applied in two halves.
// Below ln(FLT_MIN) gives 0 (no subnormal results), above ln(FLT_MAX) gives inf, NaN stays NaN.
inline float32x4_t aglm_exp4(float32x4_t x) {
  const float32x4_t hi = vdupq_n_f32(88.72283935546875f), lo = vdupq_n_f32(-87.33654022216797f);
  const float32x4_t xc = vmaxq_f32(lo, vminq_f32(hi, x)); // FMAX/FMIN propagate NaN
  const float32x4_t n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693145751953125f));
  r = vfmsq_f32(r, n, vdupq_n_f32(1.428606820309417232e-6f));
  float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const float32x4_t n1 = vrndq_f32(vmulq_f32(n, vdupq_n_f32(0.5f))); // toward zero
  p = vmulq_f32(vmulq_f32(p, aglm_pow2i4(n1)), aglm_pow2i4(vsubq_f32(n, n1)));
  p = vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(INFINITY), p);
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(p), vcltq_f32(x, lo)));
}

// Sum of the 4 lanes of each of 4 vectors: lane i of the result = sum of v[i] (pairwise adds).
inline float32x4_t aglm_hsum4x4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}

} // namespace
