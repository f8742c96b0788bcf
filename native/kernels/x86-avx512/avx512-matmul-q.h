// The AVX-512 Q8_0/Q4_0 x Q8_0 matmul, shared by avx512-matmul-q.cpp (AVX512BW integer dot) and
// avx512-matmul-q-vnni.cpp (VPDPBUSD). The including file first defines
//   __m512i aglm_q_dot(__m512i acc, __m512i u8, __m512i s8)  // acc + per int32 lane the sum of 4 u8 * s8 products
// and then uses the kernels below; everything here has internal linkage, so each object gets its own copy built with
// its own flags.
//
// Work goes in "quads" of 4 blocks (128 values) held as two zmm, values 0..15 and 16..31 of each block, one 128-bit
// lane per block, so one int32 accumulator, one conversion and one FMA serve 4 blocks. Activation rows are packed
// once per call (per chunk of tokens) into that order, with their scales broadcast and a per-block integer bias, so
// the unsigned-by-signed dot is corrected for free through the accumulator it starts from:
//   Q8_0, offset form (VNNI): dot(w ^ 0x80, x) = sum (w + 128) x   -> bias -128 * sum x
//   Q8_0, sign form (no VNNI): dot(|w|, x * sign(w)) = sum w x      -> no bias (vpmaddubsw cannot take w + 128)
//   Q4_0: dot(nibble, x) = sum (w + 8) x                            -> bias -8 * sum x
// Decoding (fewer than 4 tokens) walks weight rows one after another (one linear stream per thread, which is what
// hardware prefetchers serve best); prefill runs 4 rows x 4 tokens tiles so each weight vector serves 4 tokens.
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

#if defined(_MSC_VER)
inline void *aglm_q_aligned_alloc(size_t bytes) { return _aligned_malloc(bytes, 64); }
inline void aglm_q_aligned_free(void *p) { _aligned_free(p); }
#else
inline void *aglm_q_aligned_alloc(size_t bytes) { return aligned_alloc(64, bytes); }
inline void aglm_q_aligned_free(void *p) { free(p); }
#endif

// A thread's pack buffer, kept between calls (freed when the thread exits).
struct aglm_q_scratch {
  void *p = nullptr;
  size_t cap = 0;
  ~aglm_q_scratch() { aglm_q_aligned_free(p); }
};

void *aglm_q_scratch_get(size_t bytes) {
  static thread_local aglm_q_scratch s;
  bytes = (bytes + 63) & ~(size_t)63;
  if (s.cap >= bytes) return s.p;
  aglm_q_aligned_free(s.p);
  s.p = aglm_q_aligned_alloc(bytes);
  s.cap = s.p ? bytes : 0;
  return s.p;
}

inline __m512 aglm_q_spread(__m128 s, __m512i idx) { return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s)); }

inline __m512i aglm_q_idx_quarters() { return _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3); }

// 64 bytes of a quad of LEN bytes, from byte OFF on; bytes at or past LEN read as zero and are never touched.
template <int LEN, int OFF>
AGLM_Q_INLINE __m512i aglm_q_bytes(const char *blk) {
  if constexpr (LEN - OFF >= 64) return _mm512_loadu_si512((const void *)(blk + OFF));
  else if constexpr (LEN - OFF <= 0) return _mm512_setzero_si512();
  else return _mm512_maskz_loadu_epi8((__mmask64)((1ull << (LEN - OFF)) - 1), blk + OFF);
}

inline __m512i aglm_q_words(const uint16_t (&w)[32]) { return _mm512_loadu_si512((const void *)w); }

// ---- the activation pack: one 128-bit lane per block -------------------------------------------------------------
// Per token and quad, 4 vectors: x values 0..15 of blocks 0..3 (lane b = block b), x values 16..31, the block
// scales (4 lanes each), and the bias -c * sum(x) in lane 0 of each block's group.

const int aglm_q_vecs = 4;

inline void aglm_q_pack_quad(const aglm_block_q8_0 *x, int nb, int c, __m512i *dst) {
  static const int8_t zero[32] = {0};
  __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  float d[4] = {0, 0, 0, 0};
  for (int b = 0; b < 4; b++) {
    const int8_t *qs = b < nb ? x[b].qs : zero;
    const __m512i l = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)qs));
    const __m512i h = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(qs + 16)));
    lo = _mm512_mask_shuffle_i32x4(lo, (__mmask16)(0xf << (4 * b)), l, l, 0);
    hi = _mm512_mask_shuffle_i32x4(hi, (__mmask16)(0xf << (4 * b)), h, h, 0);
    if (b < nb) d[b] = _cvtsh_ss(x[b].d);
  }
  dst[0] = lo, dst[1] = hi;
  dst[2] = _mm512_castps_si512(aglm_q_spread(_mm_loadu_ps(d), aglm_q_idx_quarters()));
  // Block sums: vpsadbw of x + 128 gives a sum per 8 bytes; a block is the 4 such sums of its lane pair.
  const __m512i flip = _mm512_set1_epi8((char)0x80), zero512 = _mm512_setzero_si512();
  __m512i sum = _mm512_add_epi64(_mm512_sad_epu8(_mm512_xor_si512(lo, flip), zero512),
                                 _mm512_sad_epu8(_mm512_xor_si512(hi, flip), zero512));
  sum = _mm512_add_epi64(sum, _mm512_shuffle_epi32(sum, _MM_PERM_BADC)); // dword 4b: sum(x + 128) of block b
  dst[3] = _mm512_maskz_mullo_epi32(0x1111, _mm512_sub_epi32(sum, _mm512_set1_epi32(32 * 128)), _mm512_set1_epi32(-c));
}

// ---- weights: per quad, values 0..15 of its 4 blocks in one zmm (lane b = block b), values 16..31 in another -------
// Word permutes gather them, and the 4 fp16 scales, from overlapping 64-byte loads of the quad's bytes.

// Q8_0 (34-byte blocks). Offset (VNNI): dot(w ^ 0x80, x), bias 128; else the sign trick dot(|w|, x * sign(w)).
template <bool Offset>
struct aglm_q8_0_kernel {
  static const int bytes = 34;
  static const int bias_mul = Offset ? 128 : 0;
  struct W {
    __m512i lo, hi;
    __mmask64 lo_neg, hi_neg;
    __m512 d;
  };

  // Values 0..15 and 16..31 of block b come from 16-byte loads at 34b + 2 and 34b + 18 into lane b; the scales
  // through scalar loads (missing blocks read as zero).
  template <int NB>
  static AGLM_Q_INLINE W load(const char *blk) {
    __m512i lo = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 2)));
    __m512i hi = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 18)));
    uint16_t d[4] = {0, 0, 0, 0};
    memcpy(d, blk, 2);
    if (NB > 1) {
      lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)(blk + bytes + 2)), 1);
      hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(blk + bytes + 18)), 1);
      memcpy(d + 1, blk + bytes, 2);
    }
    if (NB > 2) {
      lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)(blk + 2 * bytes + 2)), 2);
      hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(blk + 2 * bytes + 18)), 2);
      memcpy(d + 2, blk + 2 * bytes, 2);
    }
    if (NB > 3) {
      lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)(blk + 3 * bytes + 2)), 3);
      hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(blk + 3 * bytes + 18)), 3);
      memcpy(d + 3, blk + 3 * bytes, 2);
    }
    __m128i h = _mm_cvtsi32_si128(d[0]);
    h = _mm_insert_epi16(h, d[1], 1), h = _mm_insert_epi16(h, d[2], 2), h = _mm_insert_epi16(h, d[3], 3);
    W w;
    w.d = aglm_q_spread(_mm_cvtph_ps(h), aglm_q_idx_quarters());
    w.lo_neg = Offset ? 0 : _mm512_movepi8_mask(lo);
    w.hi_neg = Offset ? 0 : _mm512_movepi8_mask(hi);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    w.lo = Offset ? _mm512_xor_si512(lo, flip) : _mm512_abs_epi8(lo);
    w.hi = Offset ? _mm512_xor_si512(hi, flip) : _mm512_abs_epi8(hi);
    return w;
  }

  static AGLM_Q_INLINE __m512 accumulate(__m512 acc, const W &w, const __m512i *px) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i xl = Offset ? px[0] : _mm512_mask_sub_epi8(px[0], w.lo_neg, zero, px[0]);
    const __m512i xh = Offset ? px[1] : _mm512_mask_sub_epi8(px[1], w.hi_neg, zero, px[1]);
    const __m512 s = _mm512_cvtepi32_ps(aglm_q_dot(aglm_q_dot(px[3], w.lo, xl), w.hi, xh));
    return _mm512_fmadd_ps(s, _mm512_mul_ps(w.d, _mm512_castsi512_ps(px[2])), acc);
  }
};

// Q4_0 (18-byte blocks): the nibbles are already unsigned, dot(nibble, x) with bias 8.
struct aglm_q4_0_kernel {
  static const int bytes = 18;
  static const int bias_mul = 8;
  struct W {
    __m512i lo, hi;
    __m512 d;
  };

  // Block b's 16 nibble bytes (at 18b + 2) go to lane b through 16-byte loads and inserts, its scale through a
  // scalar load, as for Q8_0. (Gathering them with word permutes from two 64-byte loads instead decodes ~25 % slower
  // on Zen 4, where the permutes, not DRAM, then limit one thread.)
  template <int NB>
  static AGLM_Q_INLINE W load(const char *blk) {
    __m512i q = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 2)));
    uint16_t d[4] = {0, 0, 0, 0};
    memcpy(d, blk, 2);
    if (NB > 1) {
      q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(blk + bytes + 2)), 1);
      memcpy(d + 1, blk + bytes, 2);
    }
    if (NB > 2) {
      q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(blk + 2 * bytes + 2)), 2);
      memcpy(d + 2, blk + 2 * bytes, 2);
    }
    if (NB > 3) {
      q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(blk + 3 * bytes + 2)), 3);
      memcpy(d + 3, blk + 3 * bytes, 2);
    }
    __m128i h = _mm_cvtsi32_si128(d[0]);
    h = _mm_insert_epi16(h, d[1], 1), h = _mm_insert_epi16(h, d[2], 2), h = _mm_insert_epi16(h, d[3], 3);
    const __m512i low = _mm512_set1_epi8(0x0f);
    W w;
    w.lo = _mm512_and_si512(q, low);
    w.hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
    w.d = aglm_q_spread(_mm_cvtph_ps(h), aglm_q_idx_quarters());
    return w;
  }

  static AGLM_Q_INLINE __m512 accumulate(__m512 acc, const W &w, const __m512i *px) {
    const __m512 s = _mm512_cvtepi32_ps(aglm_q_dot(aglm_q_dot(px[3], w.lo, px[0]), w.hi, px[1]));
    return _mm512_fmadd_ps(s, _mm512_mul_ps(w.d, _mm512_castsi512_ps(px[2])), acc);
  }
};

// ---- tiles and the driver ---------------------------------------------------------------------------------------

// Packed activations of a chunk of tokens: token t's quad q starts at px + (t * nq + q) * aglm_q_vecs.
struct aglm_q_job {
  const aglm_matmul_args *a;
  int64_t nb, nq, t0; // blocks per row, quads per row, first token of the chunk
  const __m512i *px;
};

template <class K, int R, int T, int NB>
AGLM_Q_INLINE void aglm_q_quad(const aglm_q_job &j, const char *const *w, int64_t t, int64_t q, __m512 (&acc)[R][T]) {
  typename K::W wv[R];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) wv[i] = K::template load<NB>(w[i] + 4 * q * K::bytes);
  AGLM_UNROLL
  for (int k = 0; k < T; k++) {
    const __m512i *px = j.px + ((t + k) * j.nq + q) * aglm_q_vecs;
    AGLM_UNROLL
    for (int i = 0; i < R; i++) acc[i][k] = K::accumulate(acc[i][k], wv[i], px);
  }
}

// Rows [r, r+R) x chunk tokens [t, t+T).
template <class K, int R, int T>
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
  const int64_t full = j.nb / 4;
  for (int64_t q = 0; q < full; q++) aglm_q_quad<K, R, T, 4>(j, w, t, q, acc);
  switch (j.nb % 4) {
  case 1: aglm_q_quad<K, R, T, 1>(j, w, t, full, acc); break;
  case 2: aglm_q_quad<K, R, T, 2>(j, w, t, full, acc); break;
  case 3: aglm_q_quad<K, R, T, 3>(j, w, t, full, acc); break;
  default: break;
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int k = 0; k < T; k++) a->y[(j.t0 + t + k) * a->y_stride + r + i] = _mm512_reduce_add_ps(acc[i][k]);
}

template <class K, int R>
void aglm_q_tile_tokens(const aglm_q_job &j, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_q_tile<K, R, 1>(j, r, t); break;
  case 2: aglm_q_tile<K, R, 2>(j, r, t); break;
  case 3: aglm_q_tile<K, R, 3>(j, r, t); break;
  default: aglm_q_tile<K, R, 4>(j, r, t); break;
  }
}

// Fewer than 4 tokens: one row at a time. Otherwise 4-row tiles (rows outer) over 4-token tiles.
template <class K>
void aglm_q_chunk_run(const aglm_q_job &j, int64_t tc, int64_t r0, int64_t r1) {
  int64_t r = r0;
  if (tc >= 4)
    for (; r + 4 <= r1; r += 4)
      for (int64_t t = 0; t < tc; t += 4) aglm_q_tile_tokens<K, 4>(j, r, t, tc - t < 4 ? tc - t : 4);
  for (; r < r1; r++)
    for (int64_t t = 0; t < tc; t += 4) aglm_q_tile_tokens<K, 1>(j, r, t, tc - t < 4 ? tc - t : 4);
}

template <class K>
void aglm_q_pack_token(const aglm_block_q8_0 *x, int64_t nb, __m512i *dst) {
  for (int64_t q = 0; q < (nb + 3) / 4; q++) {
    const int64_t left = nb - 4 * q;
    aglm_q_pack_quad(x + 4 * q, left < 4 ? (int)left : 4, K::bias_mul, dst + q * aglm_q_vecs);
  }
}

// A kernel whose activations are not Q8_0 rows brings its own `static void pack_token(const char *x, int64_t nb,
// __m512i *dst)` (same pack layout: 4 vectors per token and quad); overload resolution picks it when it exists.
template <class K>
AGLM_Q_INLINE auto aglm_q_pack_any(const char *x, int64_t nb, __m512i *dst, int) -> decltype(K::pack_token(x, nb, dst)) {
  return K::pack_token(x, nb, dst);
}
template <class K>
AGLM_Q_INLINE void aglm_q_pack_any(const char *x, int64_t nb, __m512i *dst, long) {
  aglm_q_pack_token<K>((const aglm_block_q8_0 *)x, nb, dst);
}

// Tokens are packed in chunks of 4 to 64 whose pack stays around 256 KiB (L2).
template <class K>
void aglm_q_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  aglm_q_job j = {a, a->k / 32, (a->k / 32 + 3) / 4, 0, nullptr};
  const int64_t per_token = j.nq * aglm_q_vecs * 64;
  int64_t chunk = per_token ? (256 * 1024) / per_token : 64;
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  if (chunk > a->n) chunk = a->n;
  __m512i *buf = (__m512i *)aglm_q_scratch_get((size_t)(chunk * per_token) + 64);
  if (!buf) return aglm_ref::matmul(a, r0, r1); // out of memory: slow but correct
  j.px = buf;
  for (j.t0 = 0; j.t0 < a->n; j.t0 += chunk) {
    const int64_t tc = a->n - j.t0 < chunk ? a->n - j.t0 : chunk;
    for (int64_t t = 0; t < tc; t++) {
      const char *x = (const char *)a->x + (j.t0 + t) * (int64_t)a->x_row_bytes;
      aglm_q_pack_any<K>(x, j.nb, buf + t * j.nq * aglm_q_vecs, 0);
    }
    aglm_q_chunk_run<K>(j, tc, r0, r1);
  }
}

} // namespace
