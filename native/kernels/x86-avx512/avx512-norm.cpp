// AVX-512 layer_norm and gelu (BERT-style encoders).
#include <immintrin.h>
#include <math.h>

#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"

namespace {

// Sum of x, or of (x - mean)^2 (each rounded to float, as the reference does), in double.
template <bool Centered> double aglm_sum_d(const float *x, int64_t n, float mean) {
  const __m512 vm = _mm512_set1_ps(mean);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    if (Centered) {
      v = _mm512_maskz_sub_ps(m, v, vm);
      v = _mm512_mul_ps(v, v);
    }
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

} // namespace

namespace aglm_avx512 {

void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps) {
  if (n <= 0) return;
  const float mean = (float)(aglm_sum_d<false>(x, n, 0.0f) / (double)n);
  const float var = (float)(aglm_sum_d<true>(x, n, mean) / (double)n);
  const __m512 vm = _mm512_set1_ps(mean), vs = _mm512_set1_ps(1.0f / sqrtf(var + eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vs), _mm512_maskz_loadu_ps(m, w + i));
    if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

void gelu(const float *x, float *y, int64_t n) {
  const __m512 c = _mm512_set1_ps(-2.0f * 0.7978845608028654f), a = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 t = _mm512_add_ps(one, _mm512_mul_ps(_mm512_mul_ps(a, v), v));
    const __m512 e = aglm_exp16(_mm512_mul_ps(_mm512_mul_ps(c, v), t));
    _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(v, _mm512_add_ps(one, e)));
  }
}

// erf by Abramowitz and Stegun 7.1.26: sign(z) (1 - poly(t) exp(-z^2)), t = 1 / (1 + 0.3275911 |z|).
void gelu_erf(const float *x, float *y, int64_t n) {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), rs2 = _mm512_set1_ps(0.70710678118654752f);
  const __m512 p = _mm512_set1_ps(0.3275911f);
  const __m512 a1 = _mm512_set1_ps(0.254829592f), a2 = _mm512_set1_ps(-0.284496736f), a3 = _mm512_set1_ps(1.421413741f);
  const __m512 a4 = _mm512_set1_ps(-1.453152027f), a5 = _mm512_set1_ps(1.061405429f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 z = _mm512_mul_ps(v, rs2);
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(p, az, one));
    __m512 poly = _mm512_fmadd_ps(a5, t, a4);
    poly = _mm512_fmadd_ps(poly, t, a3);
    poly = _mm512_fmadd_ps(poly, t, a2);
    poly = _mm512_fmadd_ps(poly, t, a1);
    poly = _mm512_mul_ps(poly, t);
    const __m512 e = aglm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    const __m512 erf_abs = _mm512_fnmadd_ps(poly, e, one);
    // copy the sign of z onto |erf|
    const __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs),
                                                           _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u))));
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, erf)));
  }
}

} // namespace aglm_avx512
