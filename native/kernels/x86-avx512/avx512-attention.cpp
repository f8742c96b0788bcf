// AVX-512 grouped-query attention: all query heads that share a KV head, for one token, in one pass over the cached
// keys and values (F32 or F16), so each cached row is read from memory once per group instead of once per head.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"

namespace {

// 16 (masked) elements of a cached row starting at element i, as floats.
inline __m512 kv_load(const void *base, int64_t i, __mmask16 m, bool f16) {
  if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i));
  return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

// In place: p = exp(p - max) / sum.
void softmax(float *p, int64_t n) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, aglm_mask16(n - j), p + j));
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = aglm_mask16(n - j);
    const __m512 e = aglm_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + j), mx));
    _mm512_mask_storeu_ps(p + j, m, e);
    vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = aglm_mask16(n - j);
    _mm512_mask_storeu_ps(p + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), inv));
  }
}

} // namespace

namespace aglm_avx512 {

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
  // Scores: each key row is loaded once and dotted with every query head of the group (the queries stay in L1).
  for (int64_t j = 0; j < n; j++) {
    const int64_t row = j * a->kv_stride + kv_off;
    for (int64_t h = 0; h < group; h++) {
      const float *q = q0 + h * hd;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t d = 0; d < hd; d += 16) {
        const __mmask16 m = aglm_mask16(hd - d);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), kv_load(a->k, row + d, m, f16), acc);
      }
      scratch[h * n + j] = _mm512_reduce_add_ps(acc) * a->scale;
    }
  }
  for (int64_t h = 0; h < group; h++) softmax(scratch + h * n, n);
  // Weighted values: each value row is loaded once and accumulated into every head's output.
  for (int64_t j = 0; j < n; j++) {
    const int64_t row = j * a->kv_stride + kv_off;
    for (int64_t d = 0; d < hd; d += 16) {
      const __mmask16 m = aglm_mask16(hd - d);
      const __m512 v = kv_load(a->v, row + d, m, f16);
      for (int64_t h = 0; h < group; h++) {
        float *o = out0 + h * hd + d;
        _mm512_mask_storeu_ps(o, m, _mm512_fmadd_ps(_mm512_set1_ps(scratch[h * n + j]), v, _mm512_maskz_loadu_ps(m, o)));
      }
    }
  }
}

} // namespace aglm_avx512
