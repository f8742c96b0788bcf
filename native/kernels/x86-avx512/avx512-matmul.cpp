// AVX-512 matmul: float weights (F32/F16/BF16) by FMA in R-row x T-token tiles; Q8_0/Q4_0 dispatched to the VNNI or
// AVX512BW object after a one-time cpuid check.
#include <cpuid.h>
#include <immintrin.h>

#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"

namespace {

struct aglm_f32_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
  }
};

struct aglm_f16_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
  }
};

struct aglm_bf16_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
};

// Rows [r, r+R) x tokens [t, t+T) for float weights: per 16 values, R weight vectors each used for T tokens.
// One loop with a mask (all ones until the tail) keeps the R x T accumulators in registers.
template <class L, int R, int T>
void aglm_float_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const float *x[T];
  __m512 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = (const char *)a->w + (r + i) * (int64_t)a->w_row_bytes;
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = (const float *)((const char *)a->x + (t + j) * (int64_t)a->x_row_bytes);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < a->k; c += 16) {
    const __mmask16 m = aglm_mask16(a->k - c);
    __m512 wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::load(w[i], c, m);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[j] + c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

template <class L, int R>
void aglm_float_tile_tokens(const aglm_matmul_args *a, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_float_tile<L, R, 1>(a, r, t); break;
  case 2: aglm_float_tile<L, R, 2>(a, r, t); break;
  case 3: aglm_float_tile<L, R, 3>(a, r, t); break;
  default: aglm_float_tile<L, R, 4>(a, r, t); break;
  }
}

// Tiles of 4 rows x up to 4 tokens; leftover rows one at a time.
template <class L>
void aglm_float_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < a->n; t += 4) {
    const int64_t tc = a->n - t < 4 ? a->n - t : 4;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) aglm_float_tile_tokens<L, 4>(a, r, t, tc);
    for (; r < r1; r++) aglm_float_tile_tokens<L, 1>(a, r, t, tc);
  }
}

bool aglm_vnni_present() {
  static const bool present = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((c >> 11) & 1u);
  }();
  return present;
}

} // namespace

namespace aglm_avx512 {

void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_F32: aglm_float_run<aglm_f32_load>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_float_run<aglm_f16_load>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_float_run<aglm_bf16_load>(a, r0, r1); return;
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0:
    if (aglm_vnni_present()) matmul_q_vnni(a, r0, r1);
    else matmul_q(a, r0, r1);
    return;
  default: return;
  }
}

} // namespace aglm_avx512
