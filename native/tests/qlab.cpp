// Kernel lab (not a test): Q4_0/Q8_0 matmul variants over the 16-row panel layout (x86-avx512/avx512-panel.h) for
// decoding and batched decoding, timed against the avx512 kernels on the GGUF layout in one process, the variants
// taking turns over enough copies of the matrix to miss the caches.
//   aglm-qlab [threads] [reps]
// What it found (Zen 4, one thread, ms per call; the numbers move by 10-20 % between runs on this VM, the order does
// not):
//   v1 (one panel x up to 8 tokens) and v2 (two panels x up to 4 tokens): v2 wins from n = 2 on; at n = 8 it takes
//     0.85-0.98 ms on 2048x5632 / 5632x2048 Q4_0 against 1.5-2.1 for the GGUF tiles (2.3x the n = 1 time instead of
//     4-5x). v2 graduated as avx512-matmul-panel.cpp.
//   v3 (P panels, S chains per panel and token), n = 1: P = 4 beats P = 2 by 20-25 % (VPDPBUSD latency: more
//     independent chains); S = 2 helps a little more. The library runs 4 panels (S = 2) for one or two tokens.
//   v4 (each block's scales stored after its data, one stream per panel): 5-10 % on k = 768 shapes at n = 1, within
//     noise elsewhere; prefetching the next panels at the start of a group: no gain. Not adopted (the amx tiles read
//     the scales where they are).
//   v5 (groups of 4 panels interleaved per block: the 4 panels' data, then their 4 scale rows; one linear stream),
//     n = 1 on the 110M shapes (768x768, 768x2048, 2048x768): Q4_0 20-35 % faster than the library's panels, but Q8_0
//     50-70 % slower (same instruction count as v4; not understood yet). Not adopted: a candidate for Q4_0 decoding.
// On k = 768 with many rows (the 110M shape's FFN) Q8_0 decoding at n = 1 stays 0-20 % behind the GGUF row kernel
// (110M Q8_0 one-thread tg128 through the whole engine: 118-120 t/s against 127-130 before the panels, 2026-12-03).
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/x86-amx/amx-internal.h"

#define UNROLL _Pragma("GCC unroll 16")
#define INL inline __attribute__((always_inline))

namespace {

// Per token and block: the 32 activation bytes as 8 dwords (for vpbroadcastd), the integer bias, the scale.
struct xq {
  int32_t q[8];
  int32_t bias;
  float d;
};

void prep_x(const char *x, int64_t nb, int bias_mul, xq *dst) {
  for (int64_t b = 0; b < nb; b++) {
    const char *blk = x + b * 34;
    memcpy(dst[b].q, blk + 2, 32);
    int32_t s = 0;
    for (int i = 0; i < 32; i++) s += (int8_t)blk[2 + i];
    dst[b].bias = -bias_mul * s;
    uint16_t h;
    memcpy(&h, blk, 2);
    dst[b].d = aglm_fp16_to_fp32(h);
  }
}

// V1: one panel x T tokens, per block the 4 weight vectors unpacked once and used by every token.
template <bool Q8, int T>
INL void v1_panel(const char *panel, int64_t nb, const xq *const *xs, float *const *y, unsigned mask) {
  const int64_t data = Q8 ? 512 : 256;
  const uint16_t *scales = (const uint16_t *)(panel + nb * data);
  const int S = T == 1 ? 2 : 1;
  __m512 f[T];
  UNROLL for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *w = panel + b * data;
    __m512i wv[8];
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) wv[g] = _mm512_xor_si512(_mm512_load_si512((const void *)(w + g * 64)), flip);
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_load_si512((const void *)(w + i * 64));
        wv[i] = _mm512_and_si512(v, low);
        wv[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + b * 16)));
    UNROLL for (int t = 0; t < T; t++) {
      const xq &x = xs[t][b];
      __m512i acc[S];
      acc[0] = _mm512_set1_epi32(x.bias);
      if (S > 1) acc[S - 1] = _mm512_setzero_si512();
      UNROLL for (int g = 0; g < 8; g++) acc[g % S] = _mm512_dpbusd_epi32(acc[g % S], wv[g], _mm512_set1_epi32(x.q[g]));
      const __m512i s = S > 1 ? _mm512_add_epi32(acc[0], acc[S - 1]) : acc[0];
      f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x.d)), f[t]);
    }
  }
  UNROLL for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y[t], (__mmask16)mask, f[t]);
}

// V2: two panels x T tokens (32 rows), weight groups loaded per step so that each activation broadcast serves both.
template <bool Q8, int T>
INL void v2_panels(const char *p0, const char *p1, int64_t nb, const xq *const *xs, float *const *y0, float *const *y1) {
  const int64_t data = Q8 ? 512 : 256;
  const uint16_t *s0 = (const uint16_t *)(p0 + nb * data), *s1 = (const uint16_t *)(p1 + nb * data);
  __m512 f0[T], f1[T];
  UNROLL for (int t = 0; t < T; t++) f0[t] = f1[t] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *w0 = p0 + b * data, *w1 = p1 + b * data;
    __m512i a0[T], a1[T];
    UNROLL for (int t = 0; t < T; t++) a0[t] = a1[t] = _mm512_set1_epi32(xs[t][b].bias);
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) {
        const __m512i u0 = _mm512_xor_si512(_mm512_load_si512((const void *)(w0 + g * 64)), flip);
        const __m512i u1 = _mm512_xor_si512(_mm512_load_si512((const void *)(w1 + g * 64)), flip);
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bx = _mm512_set1_epi32(xs[t][b].q[g]);
          a0[t] = _mm512_dpbusd_epi32(a0[t], u0, bx);
          a1[t] = _mm512_dpbusd_epi32(a1[t], u1, bx);
        }
      }
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i v0 = _mm512_load_si512((const void *)(w0 + i * 64)), v1 = _mm512_load_si512((const void *)(w1 + i * 64));
        const __m512i l0 = _mm512_and_si512(v0, low), h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low);
        const __m512i l1 = _mm512_and_si512(v1, low), h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low);
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bl = _mm512_set1_epi32(xs[t][b].q[i]), bh = _mm512_set1_epi32(xs[t][b].q[4 + i]);
          a0[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a0[t], l0, bl), h0, bh);
          a1[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a1[t], l1, bl), h1, bh);
        }
      }
    }
    const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s0 + b * 16)));
    const __m512 d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s1 + b * 16)));
    UNROLL for (int t = 0; t < T; t++) {
      const __m512 xd = _mm512_set1_ps(xs[t][b].d);
      f0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[t]), _mm512_mul_ps(d0, xd), f0[t]);
      f1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[t]), _mm512_mul_ps(d1, xd), f1[t]);
    }
  }
  UNROLL for (int t = 0; t < T; t++) {
    _mm512_storeu_ps(y0[t], f0[t]);
    _mm512_storeu_ps(y1[t], f1[t]);
  }
}

template <bool Q8, int T>
void v1_range(const aglm_matmul_args *a, const xq *xs, int64_t nb, int64_t t0, int64_t p0, int64_t p1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const xq *xr[T];
  float *y[T];
  for (int64_t p = p0; p < p1; p++) {
    UNROLL for (int t = 0; t < T; t++) {
      xr[t] = xs + (t0 + t) * nb;
      y[t] = a->y + (t0 + t) * a->y_stride + p * 16;
    }
    v1_panel<Q8, T>((const char *)a->w + p * pb, nb, xr, y, 0xffff);
  }
}

template <bool Q8, int T>
void v2_range(const aglm_matmul_args *a, const xq *xs, int64_t nb, int64_t t0, int64_t p0, int64_t p1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const xq *xr[T];
  float *y0[T], *y1[T];
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) {
    UNROLL for (int t = 0; t < T; t++) {
      xr[t] = xs + (t0 + t) * nb;
      y0[t] = a->y + (t0 + t) * a->y_stride + p * 16;
      y1[t] = y0[t] + 16;
    }
    v2_panels<Q8, T>((const char *)a->w + p * pb, (const char *)a->w + (p + 1) * pb, nb, xr, y0, y1);
  }
  if (p < p1) v1_range<Q8, T>(a, xs, nb, t0, p, p1);
}

typedef void (*range_fn)(const aglm_matmul_args *, const xq *, int64_t, int64_t, int64_t, int64_t);

template <bool Q8, int V>
range_fn pick(int T) {
  if (V == 1) {
    switch (T) {
    case 1: return v1_range<Q8, 1>;
    case 2: return v1_range<Q8, 2>;
    case 3: return v1_range<Q8, 3>;
    case 4: return v1_range<Q8, 4>;
    case 5: return v1_range<Q8, 5>;
    case 6: return v1_range<Q8, 6>;
    case 7: return v1_range<Q8, 7>;
    default: return v1_range<Q8, 8>;
    }
  }
  switch (T) {
  case 1: return v2_range<Q8, 1>;
  case 2: return v2_range<Q8, 2>;
  case 3: return v2_range<Q8, 3>;
  default: return v2_range<Q8, 4>;
  }
}

// A whole matmul with variant V: activations prepared, token tiles of up to 8 (V1) or 4 (V2).
template <int V>
void run_v(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32;
  static thread_local std::vector<xq> xs;
  xs.resize((size_t)(a->n * nb));
  const bool q8 = a->w_type == AGLM_TYPE_Q8_0;
  for (int64_t t = 0; t < a->n; t++) prep_x((const char *)a->x + t * a->x_row_bytes, nb, q8 ? 128 : 8, xs.data() + t * nb);
  const int64_t p0 = r0 / 16, p1 = r1 / 16;
  const int tile = V == 1 ? 8 : 4;
  for (int64_t t0 = 0; t0 < a->n; t0 += tile) {
    const int T = (int)std::min<int64_t>(tile, a->n - t0);
    range_fn f = q8 ? pick<true, V>(T) : pick<false, V>(T);
    f(a, xs.data(), nb, t0, p0, p1);
  }
}


// V3: P panels x T tokens with S accumulator chains per (panel, token) (the library kernel, generalised).
template <bool Q8, int P, int T, int S>
INL void v3_tile(const char *const *panel, int64_t nb, const xq *const *xs, __m512 (&out)[P][T]) {
  const int64_t data = Q8 ? 512 : 256;
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  __m512 f[P][T];
  UNROLL for (int p = 0; p < P; p++) UNROLL for (int t = 0; t < T; t++) f[p][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m512i acc[S][P][T];
    UNROLL for (int p = 0; p < P; p++) UNROLL for (int t = 0; t < T; t++) {
      acc[0][p][t] = _mm512_set1_epi32(xs[t][b].bias);
      UNROLL for (int u = 1; u < S; u++) acc[u][p][t] = _mm512_setzero_si512();
    }
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) {
        __m512i w[P];
        UNROLL for (int p = 0; p < P; p++) w[p] = _mm512_xor_si512(_mm512_load_si512((const void *)(panel[p] + b * data + g * 64)), flip);
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bx = _mm512_set1_epi32(xs[t][b].q[g]);
          UNROLL for (int p = 0; p < P; p++) acc[g % S][p][t] = _mm512_dpbusd_epi32(acc[g % S][p][t], w[p], bx);
        }
      }
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        __m512i lo[P], hi[P];
        UNROLL for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_load_si512((const void *)(panel[p] + b * data + i * 64));
          lo[p] = _mm512_and_si512(v, low);
          hi[p] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bl = _mm512_set1_epi32(xs[t][b].q[i]), bh = _mm512_set1_epi32(xs[t][b].q[4 + i]);
          UNROLL for (int p = 0; p < P; p++) {
            acc[(2 * i) % S][p][t] = _mm512_dpbusd_epi32(acc[(2 * i) % S][p][t], lo[p], bl);
            acc[(2 * i + 1) % S][p][t] = _mm512_dpbusd_epi32(acc[(2 * i + 1) % S][p][t], hi[p], bh);
          }
        }
      }
    }
    UNROLL for (int p = 0; p < P; p++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel[p] + nb * data + b * 32)));
      UNROLL for (int t = 0; t < T; t++) {
        __m512i sum = acc[0][p][t];
        UNROLL for (int u = 1; u < S; u++) sum = _mm512_add_epi32(sum, acc[u][p][t]);
        f[p][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(xs[t][b].d)), f[p][t]);
      }
    }
  }
  UNROLL for (int p = 0; p < P; p++) UNROLL for (int t = 0; t < T; t++) out[p][t] = f[p][t];
}

template <bool Q8, int P, int S>
void v3_range1(const aglm_matmul_args *a, const xq *xs, int64_t nb, int64_t p0, int64_t p1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const xq *xr[1] = {xs};
  int64_t p = p0;
  for (; p + P <= p1; p += P) {
    const char *panel[P];
    UNROLL for (int i = 0; i < P; i++) panel[i] = (const char *)a->w + (p + i) * pb;
    __m512 out[P][1];
    v3_tile<Q8, P, 1, S>(panel, nb, xr, out);
    UNROLL for (int i = 0; i < P; i++) _mm512_storeu_ps(a->y + (p + i) * 16, out[i][0]);
  }
  for (; p < p1; p++) {
    const char *panel[1] = {(const char *)a->w + p * pb};
    __m512 out[1][1];
    v3_tile<Q8, 1, 1, 2>(panel, nb, xr, out);
    _mm512_storeu_ps(a->y + p * 16, out[0][0]);
  }
}

// n = 1 only: P panels, S chains.
template <int P, int S>
void run_v3(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32;
  static thread_local std::vector<xq> xs;
  xs.resize((size_t)nb);
  const bool q8 = a->w_type == AGLM_TYPE_Q8_0;
  prep_x((const char *)a->x, nb, q8 ? 128 : 8, xs.data());
  if (q8) v3_range1<true, P, S>(a, xs.data(), nb, r0 / 16, r1 / 16);
  else v3_range1<false, P, S>(a, xs.data(), nb, r0 / 16, r1 / 16);
}


// V4: scales interleaved after each block's data (block stride data + 32), one stream per panel.
template <bool Q8, int P, int S>
INL void v4_tile(const char *const *panel, int64_t nb, const xq *x, __m512 (&out)[P]) {
  const int64_t data = Q8 ? 512 : 256, stride = data + 32;
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  __m512 f[P];
  UNROLL for (int p = 0; p < P; p++) f[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m512i acc[S][P];
    UNROLL for (int p = 0; p < P; p++) {
      acc[0][p] = _mm512_set1_epi32(x[b].bias);
      UNROLL for (int u = 1; u < S; u++) acc[u][p] = _mm512_setzero_si512();
    }
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) {
        const __m512i bx = _mm512_set1_epi32(x[b].q[g]);
        UNROLL for (int p = 0; p < P; p++)
          acc[g % S][p] = _mm512_dpbusd_epi32(acc[g % S][p], _mm512_xor_si512(_mm512_load_si512((const void *)(panel[p] + b * stride + g * 64)), flip), bx);
      }
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i bl = _mm512_set1_epi32(x[b].q[i]), bh = _mm512_set1_epi32(x[b].q[4 + i]);
        UNROLL for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_load_si512((const void *)(panel[p] + b * stride + i * 64));
          acc[(2 * i) % S][p] = _mm512_dpbusd_epi32(acc[(2 * i) % S][p], _mm512_and_si512(v, low), bl);
          acc[(2 * i + 1) % S][p] = _mm512_dpbusd_epi32(acc[(2 * i + 1) % S][p], _mm512_and_si512(_mm512_srli_epi16(v, 4), low), bh);
        }
      }
    }
    const __m512 xd = _mm512_set1_ps(x[b].d);
    UNROLL for (int p = 0; p < P; p++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel[p] + b * stride + data)));
      __m512i sum = acc[0][p];
      UNROLL for (int u = 1; u < S; u++) sum = _mm512_add_epi32(sum, acc[u][p]);
      f[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, xd), f[p]);
    }
  }
  UNROLL for (int p = 0; p < P; p++) out[p] = f[p];
}

int g_prefetch = 0; // cache lines of each next panel to prefetch at the start of a group
// The interleaved copy of a packed matrix (made once per case in main).
std::vector<std::vector<char>> g_inter;
int g_inter_copy = 0;

template <int P, int S>
void run_v4(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n != 1) return run_v<2>(a, r0, r1); // v4 covers one token only
  const int64_t nb = a->k / 32;
  static thread_local std::vector<xq> xs;
  xs.resize((size_t)nb);
  const bool q8 = a->w_type == AGLM_TYPE_Q8_0;
  prep_x((const char *)a->x, nb, q8 ? 128 : 8, xs.data());
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const char *base = g_inter[g_inter_copy].data();
  for (int64_t p = r0 / 16; p + P <= r1 / 16; p += P) {
    const char *panel[P];
    UNROLL for (int i = 0; i < P; i++) panel[i] = base + (p + i) * pb;
    if (g_prefetch && p + 2 * P <= r1 / 16)
      for (int i = 0; i < P; i++)
        for (int l = 0; l < g_prefetch; l++) _mm_prefetch(base + (p + P + i) * pb + l * 64, _MM_HINT_T0);
    __m512 out[P];
    if (q8) v4_tile<true, P, S>(panel, nb, xs.data(), out);
    else v4_tile<false, P, S>(panel, nb, xs.data(), out);
    UNROLL for (int i = 0; i < P; i++) _mm512_storeu_ps(a->y + (p + i) * 16, out[i]);
  }
}

template <int L>
void pf(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  g_prefetch = L;
  run_v4<4, 2>(a, r0, r1);
  g_prefetch = 0;
}

// Panels with each block's 16 scales moved right after the block's data.
void interleave(int type, const char *packed, char *dst, int64_t rows, int64_t k) {
  const size_t pb = aglm_amx::panel_bytes(type, k), data = type == AGLM_TYPE_Q8_0 ? 512 : 256;
  const int64_t nb = k / 32;
  for (int64_t p = 0; p < (rows + 15) / 16; p++) {
    const char *s = packed + p * pb;
    char *d = dst + p * pb;
    for (int64_t b = 0; b < nb; b++) {
      memcpy(d + b * (data + 32), s + b * data, data);
      memcpy(d + b * (data + 32) + data, s + nb * data + b * 32, 32);
    }
  }
}


// V5: groups of 4 panels interleaved block by block: for block b, the 4 panels' data, then their 4 scale rows
// (one linear stream per group, and consecutive groups contiguous: the whole matrix is one stream).
std::vector<std::vector<char>> g_grp;
template <bool Q8, int S>
INL void v5_group(const char *group, int64_t nb, const xq *x, __m512 (&out)[4]) {
  const int64_t data = Q8 ? 512 : 256, stride = data, bstride = 4 * data + 128;
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  __m512 f[4];
  UNROLL for (int p = 0; p < 4; p++) f[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const char *blk = group + b * bstride;
    __m512i acc[S][4];
    UNROLL for (int p = 0; p < 4; p++) {
      acc[0][p] = _mm512_set1_epi32(x[b].bias);
      UNROLL for (int u = 1; u < S; u++) acc[u][p] = _mm512_setzero_si512();
    }
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) {
        const __m512i bx = _mm512_set1_epi32(x[b].q[g]);
        UNROLL for (int p = 0; p < 4; p++)
          acc[g % S][p] = _mm512_dpbusd_epi32(acc[g % S][p], _mm512_xor_si512(_mm512_load_si512((const void *)(blk + p * stride + g * 64)), flip), bx);
      }
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i bl = _mm512_set1_epi32(x[b].q[i]), bh = _mm512_set1_epi32(x[b].q[4 + i]);
        UNROLL for (int p = 0; p < 4; p++) {
          const __m512i v = _mm512_load_si512((const void *)(blk + p * stride + i * 64));
          acc[(2 * i) % S][p] = _mm512_dpbusd_epi32(acc[(2 * i) % S][p], _mm512_and_si512(v, low), bl);
          acc[(2 * i + 1) % S][p] = _mm512_dpbusd_epi32(acc[(2 * i + 1) % S][p], _mm512_and_si512(_mm512_srli_epi16(v, 4), low), bh);
        }
      }
    }
    const __m512 xd = _mm512_set1_ps(x[b].d);
    UNROLL for (int p = 0; p < 4; p++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(blk + 4 * data + p * 32)));
      __m512i sum = acc[0][p];
      UNROLL for (int u = 1; u < S; u++) sum = _mm512_add_epi32(sum, acc[u][p]);
      f[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, xd), f[p]);
    }
  }
  UNROLL for (int p = 0; p < 4; p++) out[p] = f[p];
}

template <int S>
void run_v5(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n != 1) return run_v<2>(a, r0, r1);
  const int64_t nb = a->k / 32;
  static thread_local std::vector<xq> xs;
  xs.resize((size_t)nb);
  const bool q8 = a->w_type == AGLM_TYPE_Q8_0;
  prep_x((const char *)a->x, nb, q8 ? 128 : 8, xs.data());
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const char *base = g_grp[g_inter_copy].data();
  for (int64_t p = r0 / 16; p + 4 <= r1 / 16; p += 4) {
    __m512 out[4];
    if (q8) v5_group<true, S>(base + p * pb, nb, xs.data(), out);
    else v5_group<false, S>(base + p * pb, nb, xs.data(), out);
    UNROLL for (int i = 0; i < 4; i++) _mm512_storeu_ps(a->y + (p + i) * 16, out[i]);
  }
}

// 4-panel groups interleaved per block (from the amx layout); a last partial group is left out (rows % 64 == 0 here).
void group4(int type, const char *packed, char *dst, int64_t rows, int64_t k) {
  const size_t pb = aglm_amx::panel_bytes(type, k), data = type == AGLM_TYPE_Q8_0 ? 512 : 256;
  const int64_t nb = k / 32;
  for (int64_t g = 0; g < rows / 64; g++)
    for (int64_t b = 0; b < nb; b++)
      for (int p = 0; p < 4; p++) {
        const char *s = packed + (4 * g + p) * pb;
        char *d = dst + 4 * g * pb + b * (4 * data + 128);
        memcpy(d + p * data, s + b * data, data);
        memcpy(d + 4 * data + p * 32, s + nb * data + b * 32, 32);
      }
}

// ---- harness ------------------------------------------------------------------------------------------------------

uint64_t g_state = 88172645463325252ull;
float frand() {
  g_state ^= g_state << 13, g_state ^= g_state >> 7, g_state ^= g_state << 17;
  return (float)((g_state >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

typedef void (*matmul_fn)(const aglm_matmul_args *a, int64_t r0, int64_t r1);

double run_threads(matmul_fn fn, const aglm_matmul_args &a, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  if (threads == 1) {
    const int64_t per = std::max<int64_t>(16, (a.m + 3) / 4);
    for (int64_t r = 0; r < a.m; r += per) fn(&a, r, std::min(a.m, r + per));
  }
  else {
    std::vector<std::thread> ts;
    const int64_t per = (a.m / threads + 15) / 16 * 16;
    for (int t = 0; t < threads; t++) {
      const int64_t r0 = std::min<int64_t>(a.m, t * per), r1 = t == threads - 1 ? a.m : std::min<int64_t>(a.m, r0 + per);
      ts.emplace_back([&, r0, r1] { fn(&a, r0, r1); });
    }
    for (auto &t : ts) t.join();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void amx_packed(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx::matmul_packed(a, r0, r1); }
// The avx512 kernels on the GGUF layout (the table sends w_packed = 0 there).
void gguf_layout(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_kernels_avx512.matmul(a, r0, r1); }

} // namespace

int main(int argc, char **argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 9;
  const int types[] = {AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0};
  const int64_t shapes[][2] = {{768, 768}, {768, 2048}, {2048, 768}};
  const int ns[] = {1};
  const char *names[] = {"avx512-gguf", "avx512-panels", "v4-P4S2", "v5-S2", "v5-S1"};
  const matmul_fn fns[] = {gguf_layout, aglm_kernels_avx512.matmul, run_v4<4, 2>, run_v5<2>, run_v5<1>};
  const bool packed[] = {false, true, true, true, true};
  const int nf = 5, copies = 96;
  printf("%d thread(s), median of %d, ms per call\n", threads, reps);
  for (int type : types)
    for (const auto &s : shapes)
      for (int n : ns) {
        const int64_t k = s[0], m = s[1];
        const size_t row = aglm_row_bytes(type, k), xrow = aglm_row_bytes(AGLM_TYPE_Q8_0, k);
        std::vector<float> f(k);
        std::vector<std::vector<char>> w(copies, std::vector<char>(row * m)), wp(copies);
        for (int64_t r = 0; r < m; r++) {
          for (float &v : f) v = frand();
          aglm_quantize_row(type, f.data(), w[0].data() + r * row, k);
        }
        for (int c = 0; c < copies; c++) {
          if (c) w[c] = w[0];
          wp[c].resize(aglm_amx::repack_size(type, m, k) + 64);
          aglm_amx::repack(type, w[c].data(), wp[c].data(), m, k);
        }
        std::vector<char> x(xrow * n);
        for (int t = 0; t < n; t++) {
          for (float &v : f) v = frand() * 3;
          aglm_kernels_ref.quantize_row_q8_0(f.data(), x.data() + t * xrow, k);
        }
        std::vector<std::vector<float>> y(nf, std::vector<float>(n * m));
        g_inter.assign(copies, std::vector<char>());
        g_grp.assign(copies, std::vector<char>());
        for (int c = 0; c < copies; c++) {
          g_inter[c].resize(wp[c].size());
          interleave(type, wp[c].data(), g_inter[c].data(), m, k);
          g_grp[c].resize(wp[c].size());
          group4(type, wp[c].data(), g_grp[c].data(), m, k);
        }
        auto args = [&](int fi, int c) {
          g_inter_copy = c;
          aglm_matmul_args a{};
          a.w = packed[fi] ? (const void *)wp[c].data() : (const void *)w[c].data();
          a.w_row_bytes = row, a.w_type = type, a.x = x.data(), a.x_row_bytes = xrow, a.y = y[fi].data(), a.y_stride = m;
          a.n = n, a.k = k, a.m = m, a.w_packed = packed[fi];
          return a;
        };
        std::vector<std::vector<double>> ts(nf);
        for (int fi = 0; fi < nf; fi++) run_threads(fns[fi], args(fi, 0), threads);
        double worst = 0;
        int worst_fi = 0;
        for (int fi = 1; fi < nf; fi++)
          for (size_t i = 0; i < y[0].size(); i++) {
            const double d = (double)fabsf(y[fi][i] - y[0][i]) / (fabsf(y[0][i]) + 1);
            if (!(d <= worst)) worst = d, worst_fi = fi;
          }
        for (int r = 0; r < reps; r++)
          for (int fi = 0; fi < nf; fi++) ts[fi].push_back(run_threads(fns[fi], args(fi, (r * nf + fi + 1) % copies), threads));
        printf("%s %5lldx%-5lld n=%d:", type == AGLM_TYPE_Q4_0 ? "Q4_0" : "Q8_0", (long long)k, (long long)m, n);
        for (int fi = 0; fi < nf; fi++) {
          std::sort(ts[fi].begin(), ts[fi].end());
          printf("  %s %.3f", names[fi], ts[fi][ts[fi].size() / 2] * 1e3);
        }
        printf("  (max rel diff %.2g, %s)\n", worst, names[worst_fi]);
      }
  return 0;
}
