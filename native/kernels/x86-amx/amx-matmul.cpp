// AVX-512 matmul over the amx packed layout (amx-internal.h): the decode path of the amx table (n below
// tile_min_tokens) and, on any n, the kernel the tiles are tested and benchmarked against.
//   Q8_0 / Q4_0: the avx512 table's panel kernel (x86-avx512/avx512-matmul-panel.cpp), the same layout.
//   F16 / BF16: the weights widened to f32 exactly (VCVTPH2PS, or a shift for bf16) and FMA'd with the f32
//     activations: the precision of avx512.
// Built with AVX-512 F/BW/VL/DQ + VNNI + BF16; only reached through the amx table.
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-amx/amx-scratch.h"
#include "kernels/x86-avx512/avx512-panel.h"

namespace {

// ---- F16 / BF16 ---------------------------------------------------------------------------------------------------

// One panel x T tokens: each weight vector widened to f32 exactly and FMA'd with the f32 activations (as avx512
// does, in another order). F16: one 32-byte row of halves per k. BF16: one 64-byte pair row per 2 k, split by shifts.
// U independent accumulator sets per token hide the FMA latency when there are few tokens.
template <bool F16, int T>
void aglm_amx_h_tokens(const aglm_matmul_args *a, const char *panel, int64_t p, int64_t t, unsigned mask) {
  const int U = T == 1 ? 4 : T == 2 ? 2 : 1;
  const float *x[T];
  AGLM_UNROLL
  for (int i = 0; i < T; i++) x[i] = (const float *)((const char *)a->x + (t + i) * (int64_t)a->x_row_bytes);
  __m512 acc[U][T];
  AGLM_UNROLL
  for (int u = 0; u < U; u++)
    AGLM_UNROLL
    for (int i = 0; i < T; i++) acc[u][i] = _mm512_setzero_ps();
  const int64_t k = a->k;
  if (F16) {
    int64_t c = 0;
    for (; c + U <= k; c += U) {
      AGLM_UNROLL
      for (int u = 0; u < U; u++) {
        const __m512 w = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel + (c + u) * 32)));
        AGLM_UNROLL
        for (int i = 0; i < T; i++) acc[u][i] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[i][c + u]), acc[u][i]);
      }
    }
    for (; c < k; c++) {
      const __m512 w = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel + c * 32)));
      AGLM_UNROLL
      for (int i = 0; i < T; i++) acc[0][i] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[i][c]), acc[0][i]);
    }
  } else {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t pairs = k / 2;
    int64_t j = 0;
    for (; j + U <= pairs; j += U) {
      AGLM_UNROLL
      for (int u = 0; u < U; u++) {
        const __m512i w = _mm512_load_si512((const void *)(panel + (j + u) * 64));
        const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
        const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(w, hi_mask));
        AGLM_UNROLL
        for (int i = 0; i < T; i++) {
          acc[u][i] = _mm512_fmadd_ps(we, _mm512_set1_ps(x[i][2 * (j + u)]), acc[u][i]);
          acc[u][i] = _mm512_fmadd_ps(wo, _mm512_set1_ps(x[i][2 * (j + u) + 1]), acc[u][i]);
        }
      }
    }
    for (; j < pairs; j++) {
      const __m512i w = _mm512_load_si512((const void *)(panel + j * 64));
      const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(w, hi_mask));
      AGLM_UNROLL
      for (int i = 0; i < T; i++) {
        acc[0][i] = _mm512_fmadd_ps(we, _mm512_set1_ps(x[i][2 * j]), acc[0][i]);
        acc[0][i] = _mm512_fmadd_ps(wo, _mm512_set1_ps(x[i][2 * j + 1]), acc[0][i]);
      }
    }
    if (k & 1) { // the last value has no partner in x (the packed weight beside it is a zero pad)
      const __m512i w = _mm512_load_si512((const void *)(panel + pairs * 64));
      const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      AGLM_UNROLL
      for (int i = 0; i < T; i++) acc[0][i] = _mm512_fmadd_ps(we, _mm512_set1_ps(x[i][2 * pairs]), acc[0][i]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < T; i++) {
    __m512 s = acc[0][i];
    AGLM_UNROLL
    for (int u = 1; u < U; u++) s = _mm512_add_ps(s, acc[u][i]);
    _mm512_mask_storeu_ps(a->y + (t + i) * a->y_stride + p * 16, (__mmask16)mask, s);
  }
}

template <bool F16>
void aglm_amx_h_tokens_n(const aglm_matmul_args *a, const char *panel, int64_t p, int64_t t, int64_t count,
                         unsigned mask) {
  switch (count) {
  case 1: aglm_amx_h_tokens<F16, 1>(a, panel, p, t, mask); break;
  case 2: aglm_amx_h_tokens<F16, 2>(a, panel, p, t, mask); break;
  case 3: aglm_amx_h_tokens<F16, 3>(a, panel, p, t, mask); break;
  case 4: aglm_amx_h_tokens<F16, 4>(a, panel, p, t, mask); break;
  case 5: aglm_amx_h_tokens<F16, 5>(a, panel, p, t, mask); break;
  case 6: aglm_amx_h_tokens<F16, 6>(a, panel, p, t, mask); break;
  case 7: aglm_amx_h_tokens<F16, 7>(a, panel, p, t, mask); break;
  default: aglm_amx_h_tokens<F16, 8>(a, panel, p, t, mask); break;
  }
}

// Tokens in chunks of 16 to 64 whose f32 activations stay around 512 KiB; per chunk, panels one after another and
// within a panel tiles of up to 8 tokens.
template <bool F16>
void aglm_amx_h_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  if (a->n <= 0 || r1 <= r0 || !pb) return;
  int64_t chunk = (512 * 1024) / (a->k * 4 + 64);
  chunk = chunk < 16 ? 16 : chunk > 64 ? 64 : chunk & ~(int64_t)7;
  const int64_t p0 = r0 / 16, p1 = (r1 + 15) / 16;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t tc = a->n - t0 < chunk ? a->n - t0 : chunk;
    for (int64_t p = p0; p < p1; p++) {
      const unsigned mask = aglm_amx_row_mask(r0 - p * 16, r1 - p * 16);
      for (int64_t t = t0; t < t0 + tc; t += 8)
        aglm_amx_h_tokens_n<F16>(a, (const char *)a->w + p * pb, p, t, t0 + tc - t < 8 ? t0 + tc - t : 8, mask);
    }
  }
}

} // namespace

namespace aglm_amx {

void matmul_packed(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0: aglm_avx512::matmul_panel_q(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_amx_h_run<true>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_amx_h_run<false>(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_amx
