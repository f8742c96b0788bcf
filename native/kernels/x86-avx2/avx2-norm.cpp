// AVX2 layer_norm and gelu (BERT-style encoders).
#include <immintrin.h>
#include <math.h>

#include "kernels/x86-avx2/avx2-internal.h"
#include "kernels/x86-avx2/avx2-math.h"

namespace {

// Sum of x, or of (x - mean)^2 (each rounded to float, as the reference does), in double.
template <bool Centered> double aglm_sum_d(const float *x, int64_t n, float mean) {
  const __m256 vm = _mm256_set1_ps(mean);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (Centered) {
      v = _mm256_sub_ps(v, vm);
      v = _mm256_mul_ps(v, v);
    }
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; i++) {
    const float d = Centered ? x[i] - mean : x[i];
    sum += (double)(Centered ? d * d : d);
  }
  return sum;
}

} // namespace

namespace aglm_avx2 {

void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps) {
  if (n <= 0) return;
  const float mean = (float)(aglm_sum_d<false>(x, n, 0.0f) / (double)n);
  const float var = (float)(aglm_sum_d<true>(x, n, mean) / (double)n);
  const float scale = 1.0f / sqrtf(var + eps);
  const __m256 vm = _mm256_set1_ps(mean), vs = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs), _mm256_loadu_ps(w + i));
    if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(y + i, v);
  }
  for (; i < n; i++) {
    const float v = ((x[i] - mean) * scale) * w[i];
    y[i] = b ? v + b[i] : v;
  }
}

void gelu(const float *x, float *y, int64_t n) {
  const __m256 c = _mm256_set1_ps(-2.0f * 0.7978845608028654f), a = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = aglm_mask8(n - i < 8 ? n - i : 8);
    const __m256 v = _mm256_maskload_ps(x + i, m);
    const __m256 t = _mm256_add_ps(one, _mm256_mul_ps(_mm256_mul_ps(a, v), v));
    const __m256 e = aglm_exp8(_mm256_mul_ps(_mm256_mul_ps(c, v), t));
    _mm256_maskstore_ps(y + i, m, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
}

// erf by Abramowitz and Stegun 7.1.26: sign(z) (1 - poly(t) exp(-z^2)), t = 1 / (1 + 0.3275911 |z|).
void gelu_erf(const float *x, float *y, int64_t n) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), rs2 = _mm256_set1_ps(0.70710678118654752f);
  const __m256 p = _mm256_set1_ps(0.3275911f), sign = _mm256_set1_ps(-0.0f);
  const __m256 a1 = _mm256_set1_ps(0.254829592f), a2 = _mm256_set1_ps(-0.284496736f), a3 = _mm256_set1_ps(1.421413741f);
  const __m256 a4 = _mm256_set1_ps(-1.453152027f), a5 = _mm256_set1_ps(1.061405429f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = aglm_mask8(n - i < 8 ? n - i : 8);
    const __m256 v = _mm256_maskload_ps(x + i, m);
    const __m256 z = _mm256_mul_ps(v, rs2);
    const __m256 az = _mm256_andnot_ps(sign, z);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(p, az, one));
    __m256 poly = _mm256_fmadd_ps(a5, t, a4);
    poly = _mm256_fmadd_ps(poly, t, a3);
    poly = _mm256_fmadd_ps(poly, t, a2);
    poly = _mm256_fmadd_ps(poly, t, a1);
    poly = _mm256_mul_ps(poly, t);
    const __m256 e = aglm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    const __m256 erf_abs = _mm256_fnmadd_ps(poly, e, one);
    const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign, z));
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf)));
  }
}

} // namespace aglm_avx2
