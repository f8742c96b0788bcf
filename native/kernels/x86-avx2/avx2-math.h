// AVX2 vector helpers private to the avx2 sources: tail masks, horizontal sums, expf. Internal linkage only.
#pragma once

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

// Full unrolling of the small register-tile loops, so arrays of accumulators stay in registers (GCC otherwise may
// mirror them to the stack on every iteration).
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

// Lanes [0, count) set, count in [0, 8].
inline __m256i aglm_mask8(int64_t count) {
  static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(bits + 8 - count));
}

inline float aglm_hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float aglm_hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 2^n for integer-valued n in [-126, 127] (float lanes).
inline __m256 aglm_pow2i8(__m256 n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}

// e^x within ~2 ulp: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial, 2^n applied in two halves.
// Below ln(FLT_MIN) gives 0 (no subnormal results), above ln(FLT_MAX) gives inf, NaN stays NaN.
inline __m256 aglm_exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-87.33654022216797f);
  const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, x)); // NaN passes through (second operand)
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417232e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256 n1 = _mm256_round_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  p = _mm256_mul_ps(_mm256_mul_ps(p, aglm_pow2i8(n1)), aglm_pow2i8(_mm256_sub_ps(n, n1)));
  p = _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), p);
}

} // namespace
