// The AVX-512 Q8_0/Q4_0 x Q8_0 matmul, shared by avx512-matmul-q.cpp (AVX512BW integer dot) and
// avx512-matmul-q-vnni.cpp (VPDPBUSD). The including file defines the dot policies (see the contract below) and its
// entry point; everything here has internal linkage, so each object gets its own copy built with its own flags.
//
// Blocks are processed in pairs: one zmm holds the 64 int8 values of blocks 2p and 2p+1. Activation rows are first
// packed per token (in chunks of tokens) into that register order together with their scales and a per-block integer
// bias (-c * sum of the activation block), so an unsigned-by-signed dot can be corrected for free:
//   Q8_0 with VNNI: dpbusd(w ^ 0x80, x) = sum (w + 128) x  -> bias c = 128
//   Q4_0:           dpbusd(nibble, x)   = sum (w + 8) x    -> bias c = 8
//   Q8_0 without VNNI uses the sign trick (maddubs(|w|, x * sign(w))) and needs no bias (c = 0).
// Dot policy contract: `static const bool q4` (weight block layout), `static const int bias_mul` (c),
// `typedef ... W`, `static W prep(__m512i raw)` (raw = 64 weight bytes, nibbles already split for Q4_0) and
// `static __m512i dot(__m512i acc, const W &w, __m512i x)` (acc + per-lane int32 sums of 4 products).
#pragma once

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-math.h"

#if defined(__GNUC__) || defined(__clang__)
#define AGLM_Q_INLINE inline __attribute__((always_inline))
#else
#define AGLM_Q_INLINE __forceinline
#endif

namespace {

const int aglm_q_rows = 4;   // weight rows per tile
const int aglm_q_tokens = 4; // tokens per tile

// Lane groups of a block pair: Q8_0 puts block 2p in 256-bit half 0; Q4_0 (nibble split) alternates 128-bit lanes.
inline __m512i aglm_q_scale_index(bool q4) {
  return q4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
            : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
}

// A thread's pack buffer, kept between calls (freed when the thread exits).
struct aglm_q_scratch {
  void *p = nullptr;
  size_t cap = 0;
  ~aglm_q_scratch() { free(p); }
};

void *aglm_q_scratch_get(size_t bytes) {
  static thread_local aglm_q_scratch s;
  bytes = (bytes + 63) & ~(size_t)63;
  if (s.cap >= bytes) return s.p;
  free(s.p);
  s.p = aligned_alloc(64, bytes);
  s.cap = s.p ? bytes : 0;
  return s.p;
}

// The packed activations of a chunk of tokens: per token, nbp pairs of 64 bytes (xq) and 4 words (meta:
// dx of both blocks as floats, then the two int32 biases).
struct aglm_q_job {
  const aglm_matmul_args *a;
  int64_t nb, nbp, t0; // blocks per row, block pairs per row, first token of the chunk
  int8_t *xq;
  int32_t *meta;
};

inline int32_t aglm_q_block_sum(const int8_t *q) {
  const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(v, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16)))));
}

inline float aglm_q_d(aglm_fp16_t h) { return _cvtsh_ss(h); }

template <class D>
void aglm_q_pack_token(const aglm_block_q8_0 *x, int64_t nb, int8_t *xq, int32_t *meta) {
  static const int8_t zero[32] = {0};
  for (int64_t p = 0; p < (nb + 1) / 2; p++) {
    const aglm_block_q8_0 *b0 = x + 2 * p;
    const aglm_block_q8_0 *b1 = 2 * p + 1 < nb ? b0 + 1 : nullptr;
    const int8_t *q1 = b1 ? b1->qs : zero;
    int8_t *dst = xq + 64 * p;
    if (D::q4) {
      memcpy(dst, b0->qs, 16), memcpy(dst + 16, q1, 16), memcpy(dst + 32, b0->qs + 16, 16), memcpy(dst + 48, q1 + 16, 16);
    } else {
      memcpy(dst, b0->qs, 32), memcpy(dst + 32, q1, 32);
    }
    const float d0 = aglm_q_d(b0->d), d1 = b1 ? aglm_q_d(b1->d) : 0.0f;
    memcpy(meta + 4 * p, &d0, 4);
    memcpy(meta + 4 * p + 1, &d1, 4);
    meta[4 * p + 2] = -D::bias_mul * aglm_q_block_sum(b0->qs);
    meta[4 * p + 3] = -D::bias_mul * aglm_q_block_sum(q1);
  }
}

// 64 raw weight bytes of blocks 2p, 2p+1 (only 2p when Half) in the pair's lane order; Q4_0 nibbles split to bytes.
template <bool Q4, bool Half>
AGLM_Q_INLINE __m512i aglm_q_weights_raw(const char *blk) {
  if (Q4) {
    const __m128i lo = _mm_loadu_si128((const __m128i *)(blk + 2));
    const __m256i q = Half ? _mm256_zextsi128_si256(lo)
                           : _mm256_inserti128_si256(_mm256_castsi128_si256(lo), _mm_loadu_si128((const __m128i *)(blk + 20)), 1);
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
  }
  const __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + 2));
  if (Half) return _mm512_zextsi256_si512(lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256((const __m256i *)(blk + 36)), 1);
}

// The weight scales of the pair spread over their lane groups.
template <bool Q4, bool Half>
AGLM_Q_INLINE __m512 aglm_q_weight_scales(const char *blk, __m512i idx) {
  uint16_t d0, d1 = 0;
  memcpy(&d0, blk, 2);
  if (!Half) memcpy(&d1, blk + (Q4 ? 18 : 34), 2);
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)(d0 | ((uint32_t)d1 << 16))));
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

// One block pair p for rows w[0, R) and chunk tokens [t, t+T).
template <class D, int R, int T, bool Half>
AGLM_Q_INLINE void aglm_q_pair(const aglm_q_job &j, const char *const *w, int64_t t, int64_t p, __m512 (&acc)[R][T]) {
  const int bytes = D::q4 ? 18 : 34;
  const __m512i idx = aglm_q_scale_index(D::q4);
  typename D::W wv[R];
  __m512 dw[R];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) {
    const char *blk = w[i] + 2 * p * bytes;
    wv[i] = D::prep(aglm_q_weights_raw<D::q4, Half>(blk));
    dw[i] = aglm_q_weight_scales<D::q4, Half>(blk, idx);
  }
  const __m512i bias_idx = D::q4 ? _mm512_setr_epi32(2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                                 : _mm512_setr_epi32(2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0);
  const __mmask16 bias_lanes = D::q4 ? 0x0011 : 0x0101;
  AGLM_UNROLL
  for (int k = 0; k < T; k++) {
    const int64_t off = (t + k) * j.nbp + p;
    const __m512i x = _mm512_load_si512((const void *)(j.xq + 64 * off));
    const __m512i meta = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(j.meta + 4 * off)));
    const __m512 dx = _mm512_permutexvar_ps(idx, _mm512_castsi512_ps(meta));
    const __m512i bias = D::bias_mul ? _mm512_maskz_permutexvar_epi32(bias_lanes, bias_idx, meta) : _mm512_setzero_si512();
    AGLM_UNROLL
    for (int i = 0; i < R; i++) {
      const __m512 s = _mm512_cvtepi32_ps(D::dot(bias, wv[i], x));
      acc[i][k] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw[i], dx), acc[i][k]);
    }
  }
}

// Rows [r, r+R) x chunk tokens [t, t+T).
template <class D, int R, int T>
void aglm_q_tile(const aglm_q_job &j, int64_t r, int64_t t) {
  const aglm_matmul_args *a = j.a;
  const char *w[R];
  __m512 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = (const char *)a->w + (r + i) * (int64_t)a->w_row_bytes;
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int k = 0; k < T; k++) acc[i][k] = _mm512_setzero_ps();
  for (int64_t p = 0; p < j.nb / 2; p++) aglm_q_pair<D, R, T, false>(j, w, t, p, acc);
  if (j.nb & 1) aglm_q_pair<D, R, T, true>(j, w, t, j.nb / 2, acc);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int k = 0; k < T; k++) a->y[(j.t0 + t + k) * a->y_stride + r + i] = _mm512_reduce_add_ps(acc[i][k]);
}

template <class D, int R>
void aglm_q_tile_tokens(const aglm_q_job &j, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_q_tile<D, R, 1>(j, r, t); break;
  case 2: aglm_q_tile<D, R, 2>(j, r, t); break;
  case 3: aglm_q_tile<D, R, 3>(j, r, t); break;
  default: aglm_q_tile<D, R, 4>(j, r, t); break;
  }
}

// Rows outer, token tiles inner: a tile's weight rows stay in L1 while the chunk's packed tokens stream from L2.
template <class D>
void aglm_q_chunk_run(const aglm_q_job &j, int64_t tc, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + aglm_q_rows <= r1; r += aglm_q_rows)
    for (int64_t t = 0; t < tc; t += aglm_q_tokens)
      aglm_q_tile_tokens<D, aglm_q_rows>(j, r, t, tc - t < aglm_q_tokens ? tc - t : aglm_q_tokens);
  for (; r < r1; r++)
    for (int64_t t = 0; t < tc; t += aglm_q_tokens)
      aglm_q_tile_tokens<D, 1>(j, r, t, tc - t < aglm_q_tokens ? tc - t : aglm_q_tokens);
}

// Tokens are packed in chunks whose pack stays around 256 KiB (L2), 4 to 64 tokens at a time.
template <class D>
void aglm_q_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  aglm_q_job j = {a, a->k / 32, (a->k / 32 + 1) / 2, 0, nullptr, nullptr};
  const int64_t per_token = j.nbp * 80;
  int64_t chunk = per_token ? (256 * 1024) / per_token : 64;
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  if (chunk > a->n) chunk = a->n;
  char *buf = (char *)aglm_q_scratch_get((size_t)(chunk * per_token) + 64);
  if (!buf) return aglm_ref::matmul(a, r0, r1); // out of memory: slow but correct
  j.xq = (int8_t *)buf;
  j.meta = (int32_t *)(buf + chunk * j.nbp * 64);
  for (j.t0 = 0; j.t0 < a->n; j.t0 += chunk) {
    const int64_t tc = a->n - j.t0 < chunk ? a->n - j.t0 : chunk;
    for (int64_t t = 0; t < tc; t++) {
      const aglm_block_q8_0 *x = (const aglm_block_q8_0 *)((const char *)a->x + (j.t0 + t) * (int64_t)a->x_row_bytes);
      aglm_q_pack_token<D>(x, j.nb, j.xq + t * j.nbp * 64, j.meta + t * j.nbp * 4);
    }
    aglm_q_chunk_run<D>(j, tc, r0, r1);
  }
}

} // namespace
