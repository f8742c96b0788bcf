// AVX-512 vector helpers private to the avx512 sources: tail masks and expf. Internal linkage only.
#pragma once

#include <immintrin.h>
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

// Lanes [0, count) of 16, count clamped to [0, 16].
inline __mmask16 aglm_mask16(int64_t count) {
  return count >= 16 ? (__mmask16)0xffff : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

// e^x within ~2 ulp: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial, then scalef (which gives inf on
// overflow, subnormals and 0 on underflow).
inline __m512 aglm_exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x)); // +-inf -> inf / 0, NaN kept
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417232e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

} // namespace
