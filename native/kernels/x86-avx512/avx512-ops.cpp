// AVX-512 kernels other than matmul: quantize_row_q8_0, dequantize_row, rms_norm, silu_mul, add, mul (attention_group: avx512-attention.cpp).
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"

namespace {

// q = roundf(x * id) exactly as the reference computes it: clamp to [-127, 127], round half away from zero as
// trunc(p) + trunc(2 * (p - trunc(p))), NaN -> 0; then saturate to int8.
inline __m128i aglm_q8_lanes(__m512 x, __m512 id) {
  const int trunc = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;
  const __m512 p = _mm512_mul_ps(x, id);
  const __mmask16 ord = _mm512_cmp_ps_mask(p, p, _CMP_ORD_Q);
  const __m512 c = _mm512_min_ps(_mm512_max_ps(p, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  const __m512 t = _mm512_roundscale_ps(c, trunc);
  const __m512 f = _mm512_sub_ps(c, t);
  const __m512 r = _mm512_maskz_add_ps(ord, t, _mm512_roundscale_ps(_mm512_add_ps(f, f), trunc));
  return _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r));
}

void aglm_q8_0_block_quantize(const float *x, aglm_block_q8_0 *y) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps()); // a NaN lane keeps the second operand
  m = _mm512_max_ps(_mm512_abs_ps(v1), m);
  const float d = _mm512_reduce_max_ps(m) / 127.0f;
  const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  y->d = aglm_fp32_to_fp16(d);
  _mm_storeu_si128((__m128i *)y->qs, aglm_q8_lanes(v0, id));
  _mm_storeu_si128((__m128i *)(y->qs + 16), aglm_q8_lanes(v1, id));
}

void aglm_f16_row_dequantize(const aglm_fp16_t *src, float *dst, int64_t k) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = aglm_mask16(k - i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

void aglm_bf16_row_dequantize(const aglm_bf16_t *src, float *dst, int64_t k) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = aglm_mask16(k - i);
    const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i)), 16);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(w));
  }
}

void aglm_q8_0_row_dequantize(const aglm_block_q8_0 *b, float *dst, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const __m512 d = _mm512_set1_ps(aglm_fp16_to_fp32(b[i].d));
    for (int h = 0; h < 2; h++) {
      const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b[i].qs + 16 * h)));
      _mm512_storeu_ps(dst + 32 * i + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
    }
  }
}

void aglm_q4_0_row_dequantize(const aglm_block_q4_0 *b, float *dst, int64_t nb) {
  const __m512i eight = _mm512_set1_epi32(8);
  for (int64_t i = 0; i < nb; i++) {
    const __m512 d = _mm512_set1_ps(aglm_fp16_to_fp32(b[i].d));
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b[i].qs));
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, _mm512_set1_epi32(0x0f)), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
    _mm512_storeu_ps(dst + 32 * i, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
    _mm512_storeu_ps(dst + 32 * i + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
  }
}

// Sum of the squares (each rounded to float, as the reference does) in double.
double aglm_sumsq(const float *x, int64_t n) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(aglm_mask16(n - i), x + i);
    const __m512 sq = _mm512_mul_ps(v, v);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}


} // namespace

namespace aglm_avx512 {

void quantize_row_q8_0(const float *x, void *y, int64_t k) {
  aglm_block_q8_0 *b = (aglm_block_q8_0 *)y;
  for (int64_t i = 0; i < k / AGLM_QK8_0; i++) aglm_q8_0_block_quantize(x + i * AGLM_QK8_0, b + i);
}

void dequantize_row(int type, const void *src, float *dst, int64_t k) {
  switch (type) {
  case AGLM_TYPE_F16: aglm_f16_row_dequantize((const aglm_fp16_t *)src, dst, k); return;
  case AGLM_TYPE_BF16: aglm_bf16_row_dequantize((const aglm_bf16_t *)src, dst, k); return;
  case AGLM_TYPE_Q8_0: aglm_q8_0_row_dequantize((const aglm_block_q8_0 *)src, dst, k / 32); break;
  case AGLM_TYPE_Q4_0: aglm_q4_0_row_dequantize((const aglm_block_q4_0 *)src, dst, k / 32); break;
  default: aglm_ref::dequantize_row(type, src, dst, k); return;
  }
  for (int64_t i = k - k % 32; i < k; i++) dst[i] = 0.0f;
}

void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
  const float mean = n > 0 ? (float)(aglm_sumsq(x, n) / (double)n) : 0.0f;
  const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
  }
}

void silu_mul(const float *gate, const float *up, float *y, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = aglm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void add(const float *a, const float *b, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void mul(const float *a, const float *b, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = aglm_mask16(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

} // namespace aglm_avx512
