// AVX2 matmul: float weights (F32/F16/BF16) by FMA, Q8_0/Q4_0 weights by the maddubs sign trick against Q8_0 rows.
// Decoding (fewer than 4 tokens) walks weight rows one after another (one linear stream); prefill runs tiles of
// 2 rows x 4 tokens over token chunks small enough for L2, so each loaded weight vector serves 4 tokens.
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
  for (int64_t c = 0; c < a->k; c += 8) {
    const bool part = a->k - c < 8;
    const __m256i m = aglm_mask8(part ? a->k - c : 8);
    __m256 wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = part ? L::part(w[i], c, a->k - c) : L::full(w[i], c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const __m256 xv = part ? _mm256_maskload_ps(x[j] + c, m) : _mm256_loadu_ps(x[j] + c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = aglm_hsum8(acc[i][j]);
}

// One weight row x tokens [0, T), T < 4: 32 values per step into 4 accumulator sets (hides the FMA latency).
template <class L, int T>
void aglm_float_row(const aglm_matmul_args *a, int64_t r) {
  const char *w = aglm_w_row(a, r);
  const float *x[T];
  __m256 acc[4][T];
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = (const float *)aglm_x_row(a, j);
  AGLM_UNROLL
  for (int u = 0; u < 4; u++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[u][j] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= a->k; c += 32) {
    AGLM_UNROLL
    for (int u = 0; u < 4; u++) {
      const __m256 wv = L::full(w, c + 8 * u);
      AGLM_UNROLL
      for (int j = 0; j < T; j++) acc[u][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[j] + c + 8 * u), acc[u][j]);
    }
  }
  for (; c < a->k; c += 8) {
    const int64_t n = a->k - c < 8 ? a->k - c : 8;
    const __m256 wv = n < 8 ? L::part(w, c, n) : L::full(w, c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[0][j] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x[j] + c, aglm_mask8(n)), acc[0][j]);
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) {
    const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0][j], acc[1][j]), _mm256_add_ps(acc[2][j], acc[3][j]));
    a->y[j * a->y_stride + r] = aglm_hsum8(s);
  }
}

// Q8_0 weight block: the 32 signed values as they are.
struct aglm_q8_0_weights {
  static const int bytes = 34;
  static __m256i values(const char *b) { return _mm256_loadu_si256((const __m256i *)(b + 2)); }
};

// Q4_0 weight block: low nibbles are values 0..15, high nibbles 16..31; value = nibble - 8.
struct aglm_q4_0_weights {
  static const int bytes = 18;
  static __m256i values(const char *b) { // [q | q >> 4] & 0x0f - 8: one broadcast, one variable shift
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 2)));
    const __m256i v = _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
  }
};

inline float aglm_block_d(const char *b) {
  uint16_t h;
  memcpy(&h, b, 2);
  return _cvtsh_ss(h);
}

// The 8 int32 partial sums of one block's dot product: maddubs(|w|, x * sign(w)) then pairs to int32.
// |w| <= 128 and |x| <= 127 (activations never hold -128), so the int16 pair sums cannot saturate.
inline __m256 aglm_block_dot(__m256i aw, __m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Rows [r, r+R) x tokens [t, t+T) for Q8_0/Q4_0 weights against Q8_0 activations.
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
      for (int i = 0; i < R; i++)
        acc[i][j] = _mm256_fmadd_ps(aglm_block_dot(aw[i], wv[i], xv), _mm256_set1_ps(dw[i] * dx), acc[i][j]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = aglm_hsum8(acc[i][j]);
}

// One weight row x tokens [0, T), T < 4: two blocks per step into two accumulator sets.
template <class B, int T>
void aglm_quant_row(const aglm_matmul_args *a, int64_t r) {
  const char *w = aglm_w_row(a, r);
  const char *x[T];
  __m256 acc[2][T];
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, j);
  AGLM_UNROLL
  for (int u = 0; u < 2; u++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[u][j] = _mm256_setzero_ps();
  const int64_t nb = a->k / 32;
  for (int64_t b = 0; b < nb; b += 2) {
    AGLM_UNROLL
    for (int u = 0; u < 2; u++) {
      if (u == 1 && b + 1 == nb) break;
      const char *blk = w + (b + u) * B::bytes;
      const __m256i wv = B::values(blk), aw = _mm256_sign_epi8(wv, wv);
      const float dw = aglm_block_d(blk);
      AGLM_UNROLL
      for (int j = 0; j < T; j++) {
        const char *xb = x[j] + (b + u) * 34;
        const __m256 d = _mm256_set1_ps(dw * aglm_block_d(xb));
        acc[u][j] = _mm256_fmadd_ps(aglm_block_dot(aw, wv, _mm256_loadu_si256((const __m256i *)(xb + 2))), d, acc[u][j]);
      }
    }
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) a->y[j * a->y_stride + r] = aglm_hsum8(_mm256_add_ps(acc[0][j], acc[1][j]));
}

// A kind of weights: tile<R, T> computes rows [r, r+R) x tokens [t, t+T); row<T> one row x tokens [0, T).
template <class L>
struct aglm_float_kind {
  static const int bytes_per_value = 4;
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) { aglm_float_tile<L, R, T>(a, r, t); }
  template <int T>
  static void row(const aglm_matmul_args *a, int64_t r) { aglm_float_row<L, T>(a, r); }
};
template <class B>
struct aglm_quant_kind {
  static const int bytes_per_value = 1;
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) { aglm_quant_tile<B, R, T>(a, r, t); }
  template <int T>
  static void row(const aglm_matmul_args *a, int64_t r) { aglm_quant_row<B, T>(a, r); }
};

template <class K, int R>
void aglm_tile_tokens(const aglm_matmul_args *a, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: K::template tile<R, 1>(a, r, t); break;
  case 2: K::template tile<R, 2>(a, r, t); break;
  case 3: K::template tile<R, 3>(a, r, t); break;
  default: K::template tile<R, 4>(a, r, t); break;
  }
}

// Fewer than 4 tokens: rows one after another. Otherwise tokens in chunks whose activations stay in L2, and per
// chunk 2-row tiles (rows outer) over 4-token tiles.
template <class K>
void aglm_matmul_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  if (a->n < 4) {
    for (int64_t r = r0; r < r1; r++) {
      if (a->n == 1) K::template row<1>(a, r);
      else if (a->n == 2) K::template row<2>(a, r);
      else K::template row<3>(a, r);
    }
    return;
  }
  int64_t chunk = (256 * 1024) / (a->k * K::bytes_per_value + 64);
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t t1 = a->n - t0 < chunk ? a->n : t0 + chunk;
    int64_t r = r0;
    for (; r + 2 <= r1; r += 2)
      for (int64_t t = t0; t < t1; t += 4) aglm_tile_tokens<K, 2>(a, r, t, t1 - t < 4 ? t1 - t : 4);
    for (; r < r1; r++)
      for (int64_t t = t0; t < t1; t += 4) aglm_tile_tokens<K, 1>(a, r, t, t1 - t < 4 ? t1 - t : 4);
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
  case AGLM_TYPE_Q4_1:
  case AGLM_TYPE_Q5_0:
  case AGLM_TYPE_Q5_1:
  case AGLM_TYPE_Q4_K:
  case AGLM_TYPE_Q5_K:
  case AGLM_TYPE_Q6_K: matmul_ext(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_avx2
