// AVX-512 matmul over the amx packed layout (amx-internal.h): the decode path of the amx table (n below
// tile_min_tokens) and, on any n, the kernel the tiles are tested and benchmarked against.
//   Q8_0 / Q4_0: one panel (16 rows) x T tokens; per block, VPDPBUSD of 64-byte weight groups (Q8_0: w ^ 0x80, i.e.
//     w + 128; Q4_0: the raw nibbles, w + 8) against 4 activation bytes broadcast; the accumulator starts from the
//     block's bias (-128 or -8 times the sum of its activations, computed once per call and token), so the integer
//     block dot is exact; then one FMA by d_w * d_x per block, as ref does.
//   F16 / BF16: the weights widened to f32 exactly (VCVTPH2PS, or a shift for bf16) and FMA'd with the f32
//     activations: the precision of avx512.
// Built with AVX-512 F/BW/VL/DQ + VNNI + BF16; only reached through the amx table.
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-amx/amx-scratch.h"

namespace {

// ---- Q8_0 / Q4_0 ---------------------------------------------------------------------------------------------

// Per token of a chunk and block: the activation scale and the integer bias of the block.
struct aglm_amx_xblk {
  float d;
  int32_t bias;
};

// Block sums of a Q8_0 row: sum(x + 128) by vpsadbw, minus 32 * 128.
void aglm_amx_pack_x(const char *x, int64_t nb, int bias_mul, aglm_amx_xblk *dst) {
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *blk = x + b * 34;
    const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), flip);
    const __m256i s = _mm256_sad_epu8(q, _mm256_setzero_si256());
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const int64_t sum = _mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1) - 32 * 128;
    uint16_t h;
    memcpy(&h, blk, 2);
    dst[b].d = _cvtsh_ss(h);
    dst[b].bias = (int32_t)(-bias_mul * sum);
  }
}

AGLM_AMX_INLINE __m512i aglm_amx_bcast4(const char *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One panel x T tokens over all blocks; out[t] gets the 16 row results of token t.
template <bool Q8, int T>
AGLM_AMX_INLINE void aglm_amx_q_tile(const char *panel, int64_t nb, const char *const *xr,
                                     const aglm_amx_xblk *const *xs, __m512 (&out)[T]) {
  const int64_t data = Q8 ? 512 : 256;
  const uint16_t *scales = (const uint16_t *)(panel + nb * data);
  // Two chains per token when there are few tokens, so VPDPBUSD latency does not bound decoding.
  const int S = T <= 2 ? 2 : 1;
  __m512 f[T];
  AGLM_UNROLL
  for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
  const __m512i flip = _mm512_set1_epi8((char)0x80), low = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; b++) {
    const char *w = panel + b * data;
    __m512i acc[S][T];
    AGLM_UNROLL
    for (int t = 0; t < T; t++) {
      acc[0][t] = _mm512_set1_epi32(xs[t][b].bias);
      if (S > 1) acc[S - 1][t] = _mm512_setzero_si512();
    }
    if (Q8) {
      AGLM_UNROLL
      for (int g = 0; g < 8; g++) {
        const __m512i wv = _mm512_xor_si512(_mm512_load_si512((const void *)(w + g * 64)), flip);
        AGLM_UNROLL
        for (int t = 0; t < T; t++)
          acc[g % S][t] = _mm512_dpbusd_epi32(acc[g % S][t], wv, aglm_amx_bcast4(xr[t] + b * 34 + 2 + 4 * g));
      }
    } else {
      AGLM_UNROLL
      for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_load_si512((const void *)(w + i * 64));
        const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        AGLM_UNROLL
        for (int t = 0; t < T; t++) {
          acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], lo, aglm_amx_bcast4(xr[t] + b * 34 + 2 + 4 * i));
          acc[S - 1][t] = _mm512_dpbusd_epi32(acc[S - 1][t], hi, aglm_amx_bcast4(xr[t] + b * 34 + 18 + 4 * i));
        }
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + b * 16)));
    AGLM_UNROLL
    for (int t = 0; t < T; t++) {
      const __m512i s = S > 1 ? _mm512_add_epi32(acc[0][t], acc[S - 1][t]) : acc[0][t];
      f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xs[t][b].d)), f[t]);
    }
  }
  AGLM_UNROLL
  for (int t = 0; t < T; t++) out[t] = f[t];
}

struct aglm_amx_q_job {
  const aglm_matmul_args *a;
  int64_t nb, t0;            // blocks per row, first token of the chunk
  const aglm_amx_xblk *xs;   // [chunk tokens][nb]
};

template <bool Q8, int T>
void aglm_amx_q_tokens(const aglm_amx_q_job &j, const char *panel, int64_t p, int64_t t, unsigned mask) {
  const aglm_matmul_args *a = j.a;
  const char *xr[T];
  const aglm_amx_xblk *xs[T];
  AGLM_UNROLL
  for (int i = 0; i < T; i++) {
    xr[i] = (const char *)a->x + (j.t0 + t + i) * (int64_t)a->x_row_bytes;
    xs[i] = j.xs + (t + i) * j.nb;
  }
  __m512 out[T];
  aglm_amx_q_tile<Q8, T>(panel, j.nb, xr, xs, out);
  AGLM_UNROLL
  for (int i = 0; i < T; i++)
    _mm512_mask_storeu_ps(a->y + (j.t0 + t + i) * a->y_stride + p * 16, (__mmask16)mask, out[i]);
}

template <bool Q8>
void aglm_amx_q_tokens_n(const aglm_amx_q_job &j, const char *panel, int64_t p, int64_t t, int64_t count,
                         unsigned mask) {
  switch (count) {
  case 1: aglm_amx_q_tokens<Q8, 1>(j, panel, p, t, mask); break;
  case 2: aglm_amx_q_tokens<Q8, 2>(j, panel, p, t, mask); break;
  case 3: aglm_amx_q_tokens<Q8, 3>(j, panel, p, t, mask); break;
  case 4: aglm_amx_q_tokens<Q8, 4>(j, panel, p, t, mask); break;
  case 5: aglm_amx_q_tokens<Q8, 5>(j, panel, p, t, mask); break;
  case 6: aglm_amx_q_tokens<Q8, 6>(j, panel, p, t, mask); break;
  case 7: aglm_amx_q_tokens<Q8, 7>(j, panel, p, t, mask); break;
  default: aglm_amx_q_tokens<Q8, 8>(j, panel, p, t, mask); break;
  }
}

// Tokens in chunks whose activations stay around 256 KiB (L2); per chunk, panels one after another (each panel is
// read once per chunk, as one stream) and within a panel tiles of 8 tokens.
template <bool Q8>
void aglm_amx_q_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32;
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  if (a->n <= 0 || r1 <= r0 || nb <= 0 || !pb) return;
  int64_t chunk = (256 * 1024) / (int64_t)(a->x_row_bytes + 8 * nb);
  chunk = chunk < 8 ? 8 : chunk > 256 ? 256 : chunk & ~(int64_t)7;
  if (chunk > a->n) chunk = a->n;
  aglm_amx_xblk *xs = (aglm_amx_xblk *)aglm_amx_scratch_get(0, (size_t)(chunk * nb) * sizeof(aglm_amx_xblk));
  if (!xs) return; // out of memory: nothing sensible to fall back to for the packed layout
  aglm_amx_q_job j = {a, nb, 0, xs};
  const int64_t p0 = r0 / 16, p1 = (r1 + 15) / 16;
  for (j.t0 = 0; j.t0 < a->n; j.t0 += chunk) {
    const int64_t tc = a->n - j.t0 < chunk ? a->n - j.t0 : chunk;
    for (int64_t t = 0; t < tc; t++)
      aglm_amx_pack_x((const char *)a->x + (j.t0 + t) * (int64_t)a->x_row_bytes, nb, Q8 ? 128 : 8, xs + t * nb);
    for (int64_t p = p0; p < p1; p++) {
      const char *panel = (const char *)a->w + p * pb;
      const unsigned mask = aglm_amx_row_mask(r0 - p * 16, r1 - p * 16);
      for (int64_t t = 0; t < tc; t += 8) aglm_amx_q_tokens_n<Q8>(j, panel, p, t, tc - t < 8 ? tc - t : 8, mask);
    }
  }
}

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
  case AGLM_TYPE_Q8_0: aglm_amx_q_run<true>(a, r0, r1); return;
  case AGLM_TYPE_Q4_0: aglm_amx_q_run<false>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_amx_h_run<true>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_amx_h_run<false>(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_amx
