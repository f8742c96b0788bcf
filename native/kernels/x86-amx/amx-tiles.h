// The AMX matmul over the packed layout (amx-internal.h), written against tile macros that the including file
// defines: amx-matmul-tiles.cpp maps them to the AMX instructions; the kernel tests map them to a scalar model of
// the same instructions (amx-tiles-emulated.cpp), so the indexing, padding and tails are tested on CPUs without AMX.
//   AGLM_AMX_CONFIG(cfg)  AGLM_AMX_RELEASE()  AGLM_AMX_ZERO(t)  AGLM_AMX_LOAD(t, base, stride)
//   AGLM_AMX_STORE(t, base, stride)  AGLM_AMX_DPBSSD(c, a, b)  AGLM_AMX_DPBF16PS(c, a, b)
// Tile numbers are literals (the instructions encode them).
//
//   Q8_0 / Q4_0: 32 tokens x 32 weight rows at a time: C tiles 0..3 are (token tile i, panel j) = tile 2i + j, A
//     tiles 4 and 5 the activations of token tiles 0 and 1, B tiles 6 and 7 the weights of panels 0 and 1. Per
//     32-value block, A = 16 tokens x 32 int8 loaded straight from the Q8_0 activation rows (stride = their row
//     bytes), B = the block's 8 group rows x 64 bytes (Q4_0 panels are first unpacked to int8 w - 8 in scratch),
//     TDPBSSD into zeroed C tiles, which are stored and folded into f32 accumulators with AVX-512:
//     acc += float(C) * d_w * d_x. Each block's integer dot is exact, as in ref.
//   F16 / BF16: 16 tokens x 32 weight rows at a time. The activations are split once per call into bf16 xh + xl
//     (rows padded with zeros to the packed width kp and to a whole token tile), F16 panels into bf16 pair rows
//     wh + wl once per chunk of tokens (amx-internal.h: precision); TDPBF16PS accumulates xh*wh + xl*wh (+ xh*wl for
//     F16) over the whole row in f32 in the C tiles, 32 values of k per step.
// The tile configuration is loaded at the start of every call and released at its end, so a thread holds no AMX
// state between calls.
#pragma once

#include <immintrin.h>
#include <string.h>

#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-amx/amx-scratch.h"

namespace {

struct alignas(64) aglm_amx_tilecfg {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// C tiles 0..3: 16 x 64 bytes; A tiles 4, 5: 16 x a_colsb; B tiles 6, 7: b_rows x 64.
inline void aglm_amx_cfg_fill(aglm_amx_tilecfg *c, int a_colsb, int b_rows) {
  memset(c, 0, sizeof *c);
  c->palette = 1;
  for (int t = 0; t < 4; t++) c->rows[t] = 16, c->colsb[t] = 64;
  for (int t = 4; t < 6; t++) c->rows[t] = 16, c->colsb[t] = (uint16_t)a_colsb;
  for (int t = 6; t < 8; t++) c->rows[t] = (uint8_t)b_rows, c->colsb[t] = 64;
}

// ---- Q8_0 / Q4_0 -------------------------------------------------------------------------------------------------

struct aglm_amx_tq_job {
  const aglm_matmul_args *a;
  int64_t nb;
  size_t pb;
  const float *dx;  // per token tile of the chunk: [nb][16] activation scales
  float *cbuf;      // 4 C tiles of 16 x 16 int32
  float *acc;       // 4 x 16 x 16 f32
};

// Writes acc (token tiles [0, NT), panels [0, NP)) to y; tokens from t (absolute), rows from 16 p.
template <int NT, int NP>
void aglm_amx_tq_tile(const aglm_amx_tq_job &j, const char *const *xa, const char *const *wb, int64_t wb_stride,
                      const float *const *dx, const uint16_t *const *sc, int64_t t, int64_t p, const unsigned *mask) {
  const aglm_matmul_args *a = j.a;
  float *acc = j.acc;
  for (int i = 0; i < 4 * 256; i += 16) _mm512_store_ps(acc + i, _mm512_setzero_ps());
  const int64_t xrb = (int64_t)a->x_row_bytes;
  int32_t *cb = (int32_t *)j.cbuf;
  for (int64_t b = 0; b < j.nb; b++) {
    AGLM_AMX_ZERO(0);
    if (NP > 1) AGLM_AMX_ZERO(1);
    if (NT > 1) AGLM_AMX_ZERO(2);
    if (NT > 1 && NP > 1) AGLM_AMX_ZERO(3);
    AGLM_AMX_LOAD(4, xa[0] + b * 34 + 2, xrb);
    if (NT > 1) AGLM_AMX_LOAD(5, xa[1] + b * 34 + 2, xrb);
    AGLM_AMX_LOAD(6, wb[0] + b * wb_stride, 64);
    if (NP > 1) AGLM_AMX_LOAD(7, wb[1] + b * wb_stride, 64);
    AGLM_AMX_DPBSSD(0, 4, 6);
    if (NP > 1) AGLM_AMX_DPBSSD(1, 4, 7);
    if (NT > 1) AGLM_AMX_DPBSSD(2, 5, 6);
    if (NT > 1 && NP > 1) AGLM_AMX_DPBSSD(3, 5, 7);
    AGLM_AMX_STORE(0, cb, 64);
    if (NP > 1) AGLM_AMX_STORE(1, cb + 256, 64);
    if (NT > 1) AGLM_AMX_STORE(2, cb + 512, 64);
    if (NT > 1 && NP > 1) AGLM_AMX_STORE(3, cb + 768, 64);
    __m512 dw[NP];
    AGLM_UNROLL
    for (int q = 0; q < NP; q++) dw[q] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc[q] + b * 16)));
    AGLM_UNROLL
    for (int i = 0; i < NT; i++) {
      const float *d = dx[i] + b * 16;
      for (int r = 0; r < 16; r++) {
        const __m512 dxr = _mm512_set1_ps(d[r]);
        AGLM_UNROLL
        for (int q = 0; q < NP; q++) {
          const int tile = 2 * i + q;
          float *ac = acc + tile * 256 + r * 16;
          const __m512 c = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(cb + tile * 256 + r * 16)));
          _mm512_store_ps(ac, _mm512_fmadd_ps(c, _mm512_mul_ps(dw[q], dxr), _mm512_load_ps(ac)));
        }
      }
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < NT; i++) {
    const int64_t rows = a->n - (t + 16 * i) < 16 ? a->n - (t + 16 * i) : 16;
    for (int64_t r = 0; r < rows; r++)
      AGLM_UNROLL
      for (int q = 0; q < NP; q++)
        _mm512_mask_storeu_ps(a->y + (t + 16 * i + r) * a->y_stride + (p + q) * 16, (__mmask16)mask[q],
                              _mm512_load_ps(acc + (2 * i + q) * 256 + r * 16));
  }
}

// Q4_0 panel -> int8 (w - 8) in the Q8_0 group order: block b at dst + b * 512.
void aglm_amx_unpack_q4(const char *panel, int64_t nb, int8_t *dst) {
  const __m512i low = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
  for (int64_t b = 0; b < nb; b++)
    for (int i = 0; i < 4; i++) {
      const __m512i v = _mm512_load_si512((const void *)(panel + b * 256 + i * 64));
      _mm512_store_si512((void *)(dst + b * 512 + i * 64), _mm512_sub_epi8(_mm512_and_si512(v, low), eight));
      _mm512_store_si512((void *)(dst + b * 512 + (4 + i) * 64),
                         _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight));
    }
}

template <bool Q8>
void aglm_amx_tq_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32, xrb = (int64_t)a->x_row_bytes;
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  if (a->n <= 0 || r1 <= r0 || nb <= 0 || !pb) return;
  const int64_t chunk = a->n < 256 ? (a->n + 15) / 16 * 16 : 256; // tokens per chunk, whole token tiles
  // Scratch: per-tile activation scales, a zero-padded copy of a partial last token tile, C and accumulator tiles,
  // and (Q4_0) two unpacked panels.
  const size_t dx_bytes = (size_t)(chunk * nb) * 4, pad_bytes = ((size_t)(16 * xrb) + 63) / 64 * 64;
  const size_t unpack_bytes = Q8 ? 0 : (size_t)(2 * nb * 512);
  char *s = (char *)aglm_amx_scratch_get(0, dx_bytes + pad_bytes + 8 * 1024 + unpack_bytes);
  if (!s) return;
  float *dxs = (float *)s;
  char *pad = s + dx_bytes;
  aglm_amx_tq_job j = {a, nb, pb, dxs, (float *)(pad + pad_bytes), (float *)(pad + pad_bytes + 4096)};
  int8_t *unpacked = (int8_t *)(pad + pad_bytes + 8192);
  aglm_amx_tilecfg cfg;
  aglm_amx_cfg_fill(&cfg, 32, 8);
  AGLM_AMX_CONFIG(&cfg);
  const int64_t p0 = r0 / 16, p1 = (r1 + 15) / 16;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t tc = a->n - t0 < chunk ? a->n - t0 : chunk, tiles = (tc + 15) / 16;
    for (int64_t t = 0; t < tiles * 16; t++) {
      const char *x = (const char *)a->x + (t0 + t) * xrb;
      for (int64_t b = 0; b < nb; b++) {
        uint16_t h = 0;
        if (t < tc) memcpy(&h, x + b * 34, 2);
        dxs[((t / 16) * nb + b) * 16 + t % 16] = _cvtsh_ss(h);
      }
    }
    if (tc % 16) { // the last tile's missing rows must not be read from x: copy its rows, zeros below
      memset(pad, 0, pad_bytes);
      memcpy(pad, (const char *)a->x + (t0 + tc / 16 * 16) * xrb, (size_t)((tc % 16 - 1) * xrb) + (size_t)nb * 34);
    }
    for (int64_t p = p0; p < p1; p += 2) {
      const int np = p + 1 < p1 ? 2 : 1;
      const char *panel[2] = {(const char *)a->w + p * pb, (const char *)a->w + (p + np - 1) * pb};
      const uint16_t *sc[2] = {(const uint16_t *)(panel[0] + nb * (Q8 ? 512 : 256)),
                               (const uint16_t *)(panel[1] + nb * (Q8 ? 512 : 256))};
      const char *wb[2] = {panel[0], panel[1]};
      if (!Q8) {
        aglm_amx_unpack_q4(panel[0], nb, unpacked);
        if (np > 1) aglm_amx_unpack_q4(panel[1], nb, unpacked + nb * 512);
        wb[0] = (const char *)unpacked, wb[1] = (const char *)unpacked + (np - 1) * nb * 512;
      }
      const unsigned mask[2] = {aglm_amx_row_mask(r0 - p * 16, r1 - p * 16),
                                aglm_amx_row_mask(r0 - (p + 1) * 16, r1 - (p + 1) * 16)};
      for (int64_t ti = 0; ti < tiles; ti += 2) {
        const int nt = ti + 1 < tiles ? 2 : 1;
        const char *xa[2];
        const float *dx[2];
        for (int i = 0; i < nt; i++) {
          const int64_t tt = ti + i;
          xa[i] = tt * 16 + 16 > tc ? pad : (const char *)a->x + (t0 + tt * 16) * xrb;
          dx[i] = dxs + tt * nb * 16;
        }
        if (nt == 1) xa[1] = xa[0], dx[1] = dx[0];
        const int64_t t = t0 + ti * 16;
        const int64_t ws = 512; // Q8_0 panels and unpacked Q4_0 panels both hold a block per 512 bytes
        if (nt == 2 && np == 2) aglm_amx_tq_tile<2, 2>(j, xa, wb, ws, dx, sc, t, p, mask);
        else if (nt == 2) aglm_amx_tq_tile<2, 1>(j, xa, wb, ws, dx, sc, t, p, mask);
        else if (np == 2) aglm_amx_tq_tile<1, 2>(j, xa, wb, ws, dx, sc, t, p, mask);
        else aglm_amx_tq_tile<1, 1>(j, xa, wb, ws, dx, sc, t, p, mask);
      }
    }
  }
  AGLM_AMX_RELEASE();
}

// ---- F16 / BF16 -------------------------------------------------------------------------------------------------
// Tiles: C 0, 1 (panels 0, 1 x 16 tokens), A 2, 3 (the tokens' xh and xl), B 4, 5 (panel 0's wh, wl), B 6, 7
// (panel 1's). All 16 rows x 64 bytes.

inline void aglm_amx_cfg_fill_h(aglm_amx_tilecfg *c) {
  memset(c, 0, sizeof *c);
  c->palette = 1;
  for (int t = 0; t < 8; t++) c->rows[t] = 16, c->colsb[t] = 64;
}

// bf16 pairs (lo_part, hi_part) -> interleaved: element 2i from lo_part's i, 2i+1 from hi_part's i.
inline __m512i aglm_amx_interleave_bf16(__m512i v) {
  static const uint16_t idx[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                   8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  return _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)idx), v);
}

inline __m512 aglm_amx_bf16_lo_f32(__m512i v) { // elements 0..15 of 32 bf16, widened
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16));
}
inline __m512 aglm_amx_bf16_hi_f32(__m512i v) { // elements 16..31
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
}

// Activations of a chunk split into bf16 xh (nearest) and xl (nearest to x - xh), rows of kp values (zeros past k
// and in rows [rows, rows_pad)).
void aglm_amx_th_split_x(const aglm_matmul_args *a, int64_t t0, int64_t rows, int64_t rows_pad, int64_t kp,
                         uint16_t *xh, uint16_t *xl) {
  for (int64_t t = 0; t < rows_pad; t++) {
    const float *x = (const float *)((const char *)a->x + (t0 + t) * (int64_t)a->x_row_bytes);
    for (int64_t c = 0; c < kp; c += 32) {
      const int64_t l0 = t < rows ? a->k - c : 0, l1 = t < rows ? a->k - c - 16 : 0;
      const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)aglm_amx_row_mask(0, l0), x + c);
      const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)aglm_amx_row_mask(0, l1), x + c + 16);
      const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      const __m512 rl = _mm512_sub_ps(lo, aglm_amx_bf16_lo_f32(h)), rh = _mm512_sub_ps(hi, aglm_amx_bf16_hi_f32(h));
      _mm512_store_si512((void *)(xh + t * kp + c), h);
      _mm512_store_si512((void *)(xl + t * kp + c), (__m512i)_mm512_cvtne2ps_pbh(rh, rl));
    }
  }
}

// An F16 panel ([kp][16] halves) -> bf16 pair rows wh (nearest) and wl (w - wh, exact: 11 = 8 + 3 bits).
void aglm_amx_th_split_f16(const char *panel, int64_t kp, uint16_t *wh, uint16_t *wl) {
  for (int64_t j = 0; j < kp / 2; j++) {
    const __m512 e = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel + 2 * j * 32)));
    const __m512 o = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel + (2 * j + 1) * 32)));
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(o, e);
    const __m512 le = _mm512_sub_ps(e, aglm_amx_bf16_lo_f32(h)), lo = _mm512_sub_ps(o, aglm_amx_bf16_hi_f32(h));
    _mm512_store_si512((void *)(wh + j * 32), aglm_amx_interleave_bf16(h));
    _mm512_store_si512((void *)(wl + j * 32), aglm_amx_interleave_bf16((__m512i)_mm512_cvtne2ps_pbh(lo, le)));
  }
}

// 16 tokens (xh, xl rows) x NP panels; F16 adds the xh * wl term.
template <bool F16, int NP>
void aglm_amx_th_tile(const aglm_matmul_args *a, const uint16_t *xh, const uint16_t *xl, int64_t kp,
                      const char *const *wh, const char *const *wl, float *cbuf, int64_t t, int64_t p,
                      const unsigned *mask) {
  AGLM_AMX_ZERO(0);
  if (NP > 1) AGLM_AMX_ZERO(1);
  const int64_t xs = kp * 2;
  for (int64_t c = 0; c < kp; c += 32) {
    AGLM_AMX_LOAD(2, xh + c, xs);
    AGLM_AMX_LOAD(3, xl + c, xs);
    AGLM_AMX_LOAD(4, wh[0] + c * 32, 64);
    if (F16) AGLM_AMX_LOAD(5, wl[0] + c * 32, 64);
    if (NP > 1) AGLM_AMX_LOAD(6, wh[1] + c * 32, 64);
    if (F16 && NP > 1) AGLM_AMX_LOAD(7, wl[1] + c * 32, 64);
    AGLM_AMX_DPBF16PS(0, 2, 4);
    AGLM_AMX_DPBF16PS(0, 3, 4);
    if (F16) AGLM_AMX_DPBF16PS(0, 2, 5);
    if (NP > 1) AGLM_AMX_DPBF16PS(1, 2, 6);
    if (NP > 1) AGLM_AMX_DPBF16PS(1, 3, 6);
    if (F16 && NP > 1) AGLM_AMX_DPBF16PS(1, 2, 7);
  }
  AGLM_AMX_STORE(0, cbuf, 64);
  if (NP > 1) AGLM_AMX_STORE(1, cbuf + 256, 64);
  const int64_t rows = a->n - t < 16 ? a->n - t : 16;
  for (int64_t r = 0; r < rows; r++)
    AGLM_UNROLL
    for (int q = 0; q < NP; q++)
      _mm512_mask_storeu_ps(a->y + (t + r) * a->y_stride + (p + q) * 16, (__mmask16)mask[q],
                            _mm512_load_ps(cbuf + q * 256 + r * 16));
}

template <bool F16>
void aglm_amx_th_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  if (a->n <= 0 || r1 <= r0 || !pb) return;
  const int64_t kp = aglm_amx::packed_k(a->k);
  int64_t chunk = (512 * 1024) / (kp * 4) / 16 * 16; // tokens per chunk: about 512 KiB of xh + xl, whole tiles
  chunk = chunk < 16 ? 16 : chunk > 256 ? 256 : chunk;
  const int64_t n_pad = (a->n + 15) / 16 * 16;
  if (chunk > n_pad) chunk = n_pad;
  const size_t x_bytes = (size_t)(chunk * kp) * 2, w_bytes = F16 ? (size_t)kp * 32 : 0;
  char *s = (char *)aglm_amx_scratch_get(1, 2048 + 2 * x_bytes + 4 * w_bytes);
  if (!s) return;
  float *cbuf = (float *)s;
  uint16_t *xh = (uint16_t *)(s + 2048), *xl = (uint16_t *)(s + 2048 + x_bytes);
  char *wbuf = s + 2048 + 2 * x_bytes; // F16: wh0, wl0, wh1, wl1
  aglm_amx_tilecfg cfg;
  aglm_amx_cfg_fill_h(&cfg);
  AGLM_AMX_CONFIG(&cfg);
  const int64_t p0 = r0 / 16, p1 = (r1 + 15) / 16;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t tc = a->n - t0 < chunk ? a->n - t0 : chunk, tiles = (tc + 15) / 16;
    aglm_amx_th_split_x(a, t0, tc, tiles * 16, kp, xh, xl);
    for (int64_t p = p0; p < p1; p += 2) {
      const int np = p + 1 < p1 ? 2 : 1;
      const char *wh[2] = {(const char *)a->w + p * pb, (const char *)a->w + (p + np - 1) * pb};
      const char *wl[2] = {nullptr, nullptr};
      if (F16) {
        for (int q = 0; q < np; q++) {
          uint16_t *h = (uint16_t *)(wbuf + 2 * q * w_bytes), *l = (uint16_t *)(wbuf + (2 * q + 1) * w_bytes);
          aglm_amx_th_split_f16(wh[q], kp, h, l);
          wh[q] = (const char *)h, wl[q] = (const char *)l;
        }
        if (np == 1) wh[1] = wh[0], wl[1] = wl[0];
      }
      const unsigned mask[2] = {aglm_amx_row_mask(r0 - p * 16, r1 - p * 16),
                                aglm_amx_row_mask(r0 - (p + 1) * 16, r1 - (p + 1) * 16)};
      for (int64_t ti = 0; ti < tiles; ti++) {
        const uint16_t *th = xh + ti * 16 * kp, *tl = xl + ti * 16 * kp;
        if (np == 2) aglm_amx_th_tile<F16, 2>(a, th, tl, kp, wh, wl, cbuf, t0 + ti * 16, p, mask);
        else aglm_amx_th_tile<F16, 1>(a, th, tl, kp, wh, wl, cbuf, t0 + ti * 16, p, mask);
      }
    }
  }
  AGLM_AMX_RELEASE();
}

inline void aglm_amx_tiles_matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_Q8_0: aglm_amx_tq_run<true>(a, r0, r1); return;
  case AGLM_TYPE_Q4_0: aglm_amx_tq_run<false>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_amx_th_run<true>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_amx_th_run<false>(a, r0, r1); return;
  default: return;
  }
}

} // namespace
