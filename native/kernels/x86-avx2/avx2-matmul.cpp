// AVX2 matmul: float weights (F32/F16/BF16) by FMA, Q8_0/Q4_0 weights by the maddubs sign trick against Q8_0 rows.
// Work is tiled R weight rows x T tokens so each loaded weight vector serves T tokens.
#include <immintrin.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx2/avx2-internal.h"
#include "kernels/x86-avx2/avx2-math.h"

namespace {

// n < 8 16-bit values from row[i], zero-padded (no read past them).
inline __m128i aglm_u16_part(const void *row, int64_t i, int64_t n) {
  uint16_t tmp[8] = {0};
  memcpy(tmp, (const uint16_t *)row + i, (size_t)n * 2);
  return _mm_loadu_si128((const __m128i *)tmp);
}

struct aglm_f32_load {
  static __m256 full(const void *row, int64_t i) { return _mm256_loadu_ps((const float *)row + i); }
  static __m256 part(const void *row, int64_t i, int64_t n) {
    return _mm256_maskload_ps((const float *)row + i, aglm_mask8(n));
  }
};

struct aglm_f16_load {
  static __m256 full(const void *row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
  }
  static __m256 part(const void *row, int64_t i, int64_t n) { return _mm256_cvtph_ps(aglm_u16_part(row, i, n)); }
};

struct aglm_bf16_load {
  static __m256 widen(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static __m256 full(const void *row, int64_t i) {
    return widen(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
  }
  static __m256 part(const void *row, int64_t i, int64_t n) { return widen(aglm_u16_part(row, i, n)); }
};

inline const char *aglm_w_row(const aglm_matmul_args *a, int64_t r) {
  return (const char *)a->w + r * (int64_t)a->w_row_bytes;
}
inline const char *aglm_x_row(const aglm_matmul_args *a, int64_t t) {
  return (const char *)a->x + t * (int64_t)a->x_row_bytes;
}

// Rows [r, r+R) x tokens [t, t+T) for float weights.
template <class L, int R, int T>
void aglm_float_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const float *x[T];
  __m256 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = aglm_w_row(a, r + i);
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = (const float *)aglm_x_row(a, t + j);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= a->k; c += 8) {
    __m256 wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::full(w[i], c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const __m256 xv = _mm256_loadu_ps(x[j] + c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  if (c < a->k) {
    const __m256i m = aglm_mask8(a->k - c);
    __m256 wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::part(w[i], c, a->k - c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const __m256 xv = _mm256_maskload_ps(x[j] + c, m);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = aglm_hsum8(acc[i][j]);
}

// Q8_0 weight block: the 32 signed values as they are.
struct aglm_q8_0_weights {
  static const int bytes = 34;
  static __m256i values(const char *b) { return _mm256_loadu_si256((const __m256i *)(b + 2)); }
};

// Q4_0 weight block: low nibbles are values 0..15, high nibbles 16..31; value = nibble - 8.
struct aglm_q4_0_weights {
  static const int bytes = 18;
  static __m256i values(const char *b) {
    const __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
    const __m128i low = _mm_set1_epi8(0x0f);
    const __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low), _mm_and_si128(q, low));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
  }
};

inline float aglm_block_d(const char *b) {
  uint16_t h;
  memcpy(&h, b, 2);
  return _cvtsh_ss(h);
}

// Rows [r, r+R) x tokens [t, t+T) for Q8_0/Q4_0 weights against Q8_0 activations.
// Per block: maddubs(|w|, sign(x, w)) (|w| <= 128 and |x| <= 127, so no i16 saturation), madd to i32, scale in float.
template <class B, int R, int T>
void aglm_quant_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const char *x[T];
  __m256 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = aglm_w_row(a, r + i);
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, t + j);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < a->k / 32; b++) {
    __m256i wv[R], aw[R];
    float dw[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) {
      const char *blk = w[i] + b * B::bytes;
      wv[i] = B::values(blk);
      aw[i] = _mm256_sign_epi8(wv[i], wv[i]);
      dw[i] = aglm_block_d(blk);
    }
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const char *xb = x[j] + b * 34;
      const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb + 2));
      const float dx = aglm_block_d(xb);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) {
        const __m256i p16 = _mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(xv, wv[i]));
        const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i][j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw[i] * dx), acc[i][j]);
      }
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = aglm_hsum8(acc[i][j]);
}

// A tile kind: K::tile<R, T> computes rows [r, r+R) x tokens [t, t+T).
template <class L>
struct aglm_float_kind {
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) { aglm_float_tile<L, R, T>(a, r, t); }
};
template <class B>
struct aglm_quant_kind {
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) { aglm_quant_tile<B, R, T>(a, r, t); }
};

template <class K, int R>
void aglm_tile_tokens(const aglm_matmul_args *a, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: K::template tile<R, 1>(a, r, t); break;
  case 2: K::template tile<R, 2>(a, r, t); break;
  default: K::template tile<R, 3>(a, r, t); break;
  }
}

// Rows in groups of 4 when decoding a single token, of 2 otherwise (T = 3 tokens per tile keeps 16 ymm registers).
template <class K>
void aglm_matmul_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < a->n; t += 3) {
    const int64_t tc = a->n - t < 3 ? a->n - t : 3;
    int64_t r = r0;
    if (tc == 1)
      for (; r + 4 <= r1; r += 4) K::template tile<4, 1>(a, r, t);
    else
      for (; r + 2 <= r1; r += 2) aglm_tile_tokens<K, 2>(a, r, t, tc);
    for (; r < r1; r++) aglm_tile_tokens<K, 1>(a, r, t, tc);
  }
}

} // namespace

namespace aglm_avx2 {

void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_F32: aglm_matmul_run<aglm_float_kind<aglm_f32_load>>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_matmul_run<aglm_float_kind<aglm_f16_load>>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_matmul_run<aglm_float_kind<aglm_bf16_load>>(a, r0, r1); return;
  case AGLM_TYPE_Q8_0: aglm_matmul_run<aglm_quant_kind<aglm_q8_0_weights>>(a, r0, r1); return;
  case AGLM_TYPE_Q4_0: aglm_matmul_run<aglm_quant_kind<aglm_q4_0_weights>>(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_avx2
