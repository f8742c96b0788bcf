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

// The 16 horizontal sums of v[0..15], in order, by halving: 128-bit lane shuffles, then within-lane shuffles (46
// operations instead of 16 full reductions). After the four levels, element 4L + e holds the sum of v[4e + L].
inline __m512 aglm_sum16(const __m512 (&v)[16]) {
  __m512 w[8], z[4], u[2];
  AGLM_UNROLL
  for (int p = 0; p < 8; p++) // lanes 0,1: halves of v[2p]; lanes 2,3: halves of v[2p+1]
    w[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  AGLM_UNROLL
  for (int q = 0; q < 4; q++) // lane L: 4 partial sums of v[4q + L]
    z[q] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  AGLM_UNROLL
  for (int r = 0; r < 2; r++) // lane L: elements 0,1 partial sums of v[8r + L], elements 2,3 of v[8r + 4 + L]
    u[r] = _mm512_add_ps(_mm512_shuffle_ps(z[2 * r], z[2 * r + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(z[2 * r], z[2 * r + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), s);
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
  // Scores, 16 keys at a time: per head of the group, 16 dot products accumulated as vectors and reduced together by
  // aglm_sum16 (one horizontal reduction per key was most of this kernel's time in prompt processing). Each block of
  // key rows is read from memory once per group and then from L1 for the other heads.
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t count = n - j0 < 16 ? n - j0 : 16;
    int64_t row[16];
    for (int i = 0; i < 16; i++) row[i] = aglm_attn_row(a, t, j0 + (i < count ? i : count - 1)) * a->kv_stride + kv_off;
    for (int64_t h = 0; h < group; h++) {
      const float *q = q0 + h * hd;
      __m512 acc[16];
      AGLM_UNROLL
      for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
      for (int64_t d = 0; d < hd; d += 16) {
        const __mmask16 m = aglm_mask16(hd - d);
        const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
        AGLM_UNROLL
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(qv, kv_load(a->k, row[i] + d, m, f16), acc[i]);
      }
      const __m512 sc = _mm512_mul_ps(aglm_sum16(acc), _mm512_set1_ps(a->scale));
      _mm512_mask_storeu_ps(scratch + h * n + j0, aglm_mask16(count), sc);
    }
  }
  for (int64_t h = 0; h < group; h++) softmax(scratch + h * n, n);
  // Weighted values, 16 rows at a time: per head and 16 output dims, one accumulator through the 16 rows (updating the
  // output in memory after every row made a store-to-load chain that bounded this loop); the block of value rows is
  // read from memory once per group and then from L1 for the other heads.
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t count = n - j0 < 16 ? n - j0 : 16;
    int64_t row[16];
    for (int64_t i = 0; i < count; i++) row[i] = aglm_attn_row(a, t, j0 + i) * a->kv_stride + kv_off;
    for (int64_t h = 0; h < group; h++) {
      const float *p = scratch + h * n + j0;
      for (int64_t d = 0; d < hd; d += 16) {
        const __mmask16 m = aglm_mask16(hd - d);
        float *o = out0 + h * hd + d;
        __m512 acc = _mm512_maskz_loadu_ps(m, o);
        for (int64_t i = 0; i < count; i++)
          acc = _mm512_fmadd_ps(_mm512_set1_ps(p[i]), kv_load(a->v, row[i] + d, m, f16), acc);
        _mm512_mask_storeu_ps(o, m, acc);
      }
    }
  }
}

} // namespace aglm_avx512
