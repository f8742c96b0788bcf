// AVX2 kernels other than matmul: quantize_row_q8_0, dequantize_row, rms_norm, attention_group, silu_mul, add, mul.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx2/avx2-internal.h"
#include "kernels/x86-avx2/avx2-math.h"

namespace {

// roundf() of lanes already clamped to [-127, 127]: trunc(p) + trunc(2 * (p - trunc(p))), exact.
inline __m256 aglm_round_away8(__m256 p) {
  const int mode = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;
  const __m256 t = _mm256_round_ps(p, mode);
  const __m256 f = _mm256_sub_ps(p, t);
  return _mm256_add_ps(t, _mm256_round_ps(_mm256_add_ps(f, f), mode));
}

// q = roundf(x * id) as the reference computes it (NaN -> 0, clamped to [-127, 127]).
inline __m256i aglm_q8_lanes(__m256 x, __m256 id) {
  const __m256 p = _mm256_mul_ps(x, id);
  const __m256 ord = _mm256_cmp_ps(p, p, _CMP_ORD_Q);
  const __m256 c = _mm256_min_ps(_mm256_max_ps(p, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
  return _mm256_cvtps_epi32(_mm256_and_ps(aglm_round_away8(c), ord));
}

void aglm_q8_0_block_quantize(const float *x, aglm_block_q8_0 *y) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4], m = _mm256_setzero_ps();
  AGLM_UNROLL
  for (int i = 0; i < 4; i++) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    m = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), m); // a NaN lane keeps m
  }
  const float d = aglm_hmax8(m) / 127.0f;
  const float idf = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 id = _mm256_set1_ps(idf);
  y->d = aglm_fp32_to_fp16(d);
  const __m256i a = _mm256_packs_epi32(aglm_q8_lanes(v[0], id), aglm_q8_lanes(v[1], id));
  const __m256i b = _mm256_packs_epi32(aglm_q8_lanes(v[2], id), aglm_q8_lanes(v[3], id));
  const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i *)y->qs, q);
}

void aglm_f16_row_dequantize(const aglm_fp16_t *src, float *dst, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < k; i++) dst[i] = aglm_fp16_to_fp32(src[i]);
}

void aglm_bf16_row_dequantize(const aglm_bf16_t *src, float *dst, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < k; i++) dst[i] = aglm_bf16_to_fp32(src[i]);
}

// 8 signed bytes at p, times d.
inline void aglm_i8x8_scale_store(const int8_t *p, __m256 d, float *dst) {
  const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
  _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
}

void aglm_q8_0_row_dequantize(const aglm_block_q8_0 *b, float *dst, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const __m256 d = _mm256_set1_ps(aglm_fp16_to_fp32(b[i].d));
    AGLM_UNROLL
    for (int j = 0; j < 4; j++) aglm_i8x8_scale_store(b[i].qs + 8 * j, d, dst + 32 * i + 8 * j);
  }
}

void aglm_q4_0_row_dequantize(const aglm_block_q4_0 *b, float *dst, int64_t nb) {
  const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < nb; i++) {
    const __m256 d = _mm256_set1_ps(aglm_fp16_to_fp32(b[i].d));
    const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
    int8_t v[32];
    _mm_storeu_si128((__m128i *)v, _mm_sub_epi8(_mm_and_si128(q, low), eight));
    _mm_storeu_si128((__m128i *)(v + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), low), eight));
    AGLM_UNROLL
    for (int j = 0; j < 4; j++) aglm_i8x8_scale_store(v + 8 * j, d, dst + 32 * i + 8 * j);
  }
}

// Sum of the squares (each rounded to float, as the reference does) in double.
double aglm_sumsq(const float *x, int64_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sq = _mm256_mul_ps(v, v);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; i++) sum += (double)(x[i] * x[i]);
  return sum;
}

// p[j] = exp(p[j] - max) / sum over j < n, the sum taken in double.
void aglm_softmax(float *p, int64_t n) {
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(p + j));
  float max = aglm_hmax8(mv);
  for (; j < n; j++) max = p[j] > max ? p[j] : max;
  const __m256 maxv = _mm256_set1_ps(max);
  __m256d s = _mm256_setzero_pd();
  for (j = 0; j < n; j += 8) {
    const __m256i m = aglm_mask8(n - j < 8 ? n - j : 8);
    const __m256 e = _mm256_and_ps(aglm_exp8(_mm256_sub_ps(_mm256_maskload_ps(p + j, m), maxv)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(p + j, m, e);
    s = _mm256_add_pd(s, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                                       _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, s);
  const __m256 inv = _mm256_set1_ps((float)(1.0 / ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))));
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(p + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), inv));
  for (; j < n; j++) p[j] *= _mm256_cvtss_f32(inv);
}

// Elements [i, i + 8) of a cached row (F32 or F16), and [i, i + count) for count < 8 (the rest 0).
inline __m256 aglm_kv8(const void *base, int64_t i, bool f16) {
  if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)));
  return _mm256_loadu_ps((const float *)base + i);
}
inline __m256 aglm_kv_part8(const void *base, int64_t i, int64_t count, bool f16) {
  if (!f16) return _mm256_maskload_ps((const float *)base + i, aglm_mask8(count));
  uint16_t h[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  memcpy(h, (const uint16_t *)base + i, (size_t)count * 2);
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

} // namespace

namespace aglm_avx2 {

// All query heads of KV head g for token t, K/V in F32 or F16: each key row is read once per group (and dotted with
// every head's query), each block of 16 value rows once per group (accumulated in registers per head and 8 dims).
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch) {
  const int64_t hd = a->head_dim;
  const int64_t group = a->n_head_kv > 0 && a->n_head >= a->n_head_kv ? a->n_head / a->n_head_kv : 1;
  const int64_t n = a->n_kv[t];
  const bool f16 = a->kv_type == AGLM_TYPE_F16;
  const int64_t kv_off = g * hd;
  const float *q0 = a->q + t * a->q_stride + g * group * hd;
  float *out0 = a->out + t * a->out_stride + g * group * hd;
  memset(out0, 0, (size_t)(group * hd) * sizeof(float));
  if (n <= 0) return;
  for (int64_t j = 0; j < n; j++) {
    const int64_t row = aglm_attn_row(a, t, j) * a->kv_stride + kv_off;
    for (int64_t h = 0; h < group; h++) {
      const float *q = q0 + h * hd;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      int64_t d = 0;
      for (; d + 16 <= hd; d += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), aglm_kv8(a->k, row + d, f16), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), aglm_kv8(a->k, row + d + 8, f16), acc1);
      }
      if (d + 8 <= hd) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), aglm_kv8(a->k, row + d, f16), acc0), d += 8;
      if (d < hd)
        acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + d, aglm_mask8(hd - d)), aglm_kv_part8(a->k, row + d, hd - d, f16), acc1);
      scratch[h * n + j] = aglm_hsum8(_mm256_add_ps(acc0, acc1)) * a->scale;
    }
  }
  for (int64_t h = 0; h < group; h++) aglm_softmax(scratch + h * n, n);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t count = n - j0 < 16 ? n - j0 : 16;
    for (int64_t h = 0; h < group; h++) {
      const float *p = scratch + h * n + j0;
      for (int64_t d = 0; d < hd; d += 8) {
        const int64_t w = hd - d < 8 ? hd - d : 8;
        const __m256i m = aglm_mask8(w);
        float *o = out0 + h * hd + d;
        __m256 acc = _mm256_maskload_ps(o, m);
        for (int64_t i = 0; i < count; i++) {
          const int64_t at = aglm_attn_row(a, t, j0 + i) * a->kv_stride + kv_off + d;
          acc = _mm256_fmadd_ps(_mm256_set1_ps(p[i]), w == 8 ? aglm_kv8(a->v, at, f16) : aglm_kv_part8(a->v, at, w, f16), acc);
        }
        _mm256_maskstore_ps(o, m, acc);
      }
    }
  }
}

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
  const float scale = 1.0f / sqrtf(mean + eps);
  const __m256 sv = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(w + i)));
  for (; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

void silu_mul(const float *gate, const float *up, float *y, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = aglm_mask8(n - i < 8 ? n - i : 8);
    const __m256 g = _mm256_maskload_ps(gate + i, m);
    const __m256 e = aglm_exp8(_mm256_xor_ps(g, sign));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(s, _mm256_maskload_ps(up + i, m)));
  }
}

void add(const float *a, const float *b, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++) y[i] = a[i] + b[i];
}

void mul(const float *a, const float *b, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++) y[i] = a[i] * b[i];
}

} // namespace aglm_avx2
