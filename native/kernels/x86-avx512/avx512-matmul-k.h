// The AVX-512 K-quant matmul (Q4_K, Q5_K, Q6_K x Q8_K), shared by avx512-matmul-ext.cpp (AVX512BW) and
// avx512-matmul-ext-vnni.cpp (VPDPWSSD). The including file first defines
//   __m512i aglm_k_madd(__m512i acc, __m512i p16, __m512i s16)  // acc + per int32 lane the sum of 2 i16 * i16 products
// Everything here has internal linkage, so each object gets its own copy built with its own flags.
//
// Per super-block of 256 values the weights give 4 vectors of 64 unsigned quants (0..15, 0..31 or 0..63) and 4
// vectors of int16 sub-block scales, one per 16-bit product lane. vpmaddubsw(q, x) makes the int16 pair sums
// (|q x| <= 63 * 127, no saturation) and vpmaddwd (or vpdpwssd) multiplies them by their sub-block scale into int32
// lanes: the super-block's integer sum is exact, as in the reference. Then, per super-block:
//   Q4_K/Q5_K: acc += d_w (d_x S1) - sum_j (dmin_w m_j) (d_x xsum_j), the last factor precomputed in the pack;
//   Q6_K:      the values are stored + 32, so S = S1 - 32 * sum_g scale_g bsum_g, then acc += d_w d_x * S.
// The activations are packed once per call (per chunk of tokens): per token and super-block 4 vectors of 64 int8 in
// the order the weight vectors come in (Q4_K/Q5_K: sub-blocks 0,2 | 1,3 | 4,6 | 5,7, the order the low and high
// nibbles of 64 bytes give; Q6_K: natural), then d_x and (Q4_K/Q5_K) d_x times the 8 sub-block sums as floats or
// (Q6_K) the 16 bsums. Decoding (fewer than 4 tokens) reads weight rows one after another; prefill runs 2 rows x
// 4 tokens tiles, each weight vector and its scales serving 4 tokens.
#pragma once

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-math.h"

#if defined(__GNUC__) || defined(__clang__)
#define AGLM_K_INLINE inline __attribute__((always_inline))
#else
#define AGLM_K_INLINE __forceinline
#endif

namespace {

#if defined(_MSC_VER)
inline void *aglm_k_aligned_alloc(size_t bytes) { return _aligned_malloc(bytes, 64); }
inline void aglm_k_aligned_free(void *p) { _aligned_free(p); }
#else
inline void *aglm_k_aligned_alloc(size_t bytes) { return aligned_alloc(64, bytes); }
inline void aglm_k_aligned_free(void *p) { free(p); }
#endif

// A thread's pack buffer, kept between calls (freed when the thread exits).
struct aglm_k_scratch {
  void *p = nullptr;
  size_t cap = 0;
  ~aglm_k_scratch() { aglm_k_aligned_free(p); }
};

void *aglm_k_scratch_get(size_t bytes) {
  static thread_local aglm_k_scratch s;
  bytes = (bytes + 63) & ~(size_t)63;
  if (s.cap >= bytes) return s.p;
  aglm_k_aligned_free(s.p);
  s.p = aglm_k_aligned_alloc(bytes);
  s.cap = s.p ? bytes : 0;
  return s.p;
}

// Per token and super-block: 4 value vectors, then aux: Q4_K/Q5_K (Perm): 8 floats d_x * sum of sub-block j
// (bytes 0..31), d_x (bytes 32..35); Q6_K: d_x (bytes 0..3), the 16 bsums (int16, bytes 32..63).
const int aglm_k_vecs = 5;

template <bool Perm>
void aglm_k_pack_token(const aglm_block_q8_K *x, int64_t nsb, __m512i *dst) {
  for (int64_t i = 0; i < nsb; i++, dst += aglm_k_vecs) {
    const int8_t *q = x[i].qs;
    for (int v = 0; v < 4; v++) {
      // Perm: vector v = 32 values of sub-block 4(v/2) + v%2 then 32 of sub-block 4(v/2) + v%2 + 2.
      const int a = Perm ? 32 * (4 * (v / 2) + v % 2) : 64 * v, b = Perm ? a + 64 : a + 32;
      const __m256i lo = _mm256_loadu_si256((const __m256i *)(q + a)), hi = _mm256_loadu_si256((const __m256i *)(q + b));
      _mm512_store_si512(dst + v, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    const __m256i bs = _mm256_loadu_si256((const __m256i *)x[i].bsums);
    if (Perm) { // d_x * (the sums of the 8 sub-blocks of 32) as floats, then d_x
      const __m256i b32 = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
      const __m256 v = _mm256_mul_ps(_mm256_set1_ps(x[i].d), _mm256_cvtepi32_ps(b32));
      _mm512_store_si512(dst + 4, _mm512_inserti64x4(_mm512_castps_si512(_mm512_zextps256_ps512(v)),
                                                     _mm256_castps_si256(_mm256_set_ps(0, 0, 0, 0, 0, 0, 0, x[i].d)), 1));
    } else { // d_x, then the 16 bsums
      const __m128i d = _mm_castps_si128(_mm_set_ss(x[i].d));
      _mm512_store_si512(dst + 4, _mm512_inserti64x4(_mm512_zextsi128_si512(d), bs, 1));
    }
  }
}

inline __m512 aglm_k_aux_d(const __m512i *aux, int off) {
  float d;
  memcpy(&d, (const char *)aux + off, 4);
  return _mm512_set1_ps(d);
}
inline __m256i aglm_k_aux_bsums(const __m512i *aux) { return _mm256_load_si256((const __m256i *)((const char *)aux + 32)); }

// vpshufb controls that fill 128-bit lane L with one int16 word: byte b[L] zero-extended (Wide = false; the control
// byte 0x80 gives 0) or word b[L] (Wide = true).
template <bool Wide>
inline __m512i aglm_k_lane_words(int b0, int b1, int b2, int b3) {
  const int b[4] = {b0, b1, b2, b3};
  alignas(64) int8_t c[64];
  for (int l = 0; l < 4; l++)
    for (int w = 0; w < 8; w++) {
      c[16 * l + 2 * w] = (int8_t)(Wide ? 2 * b[l] : b[l]);
      c[16 * l + 2 * w + 1] = (int8_t)(Wide ? 2 * b[l] + 1 : 0x80);
    }
  return _mm512_load_si512((const void *)c);
}

inline float aglm_k_h2f(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Q4_K/Q5_K scales: 8 six-bit scales and 8 six-bit mins from the 12 bytes (see aglm_block_q4_K), as bytes.
AGLM_K_INLINE void aglm_k4_scales(const char *s12, uint64_t *sc, uint64_t *mn) {
  uint32_t a, b, c;
  memcpy(&a, s12, 4), memcpy(&b, s12 + 4, 4), memcpy(&c, s12 + 8, 4);
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x30303030u;
  *sc = (uint64_t)(a & low6) | (uint64_t)((c & low4) | ((a >> 2) & top2)) << 32;
  *mn = (uint64_t)(b & low6) | (uint64_t)(((c >> 4) & low4) | ((b >> 2) & top2)) << 32;
}

// Q4_K (Five = false) and Q5_K (Five = true).
template <bool Five>
struct aglm_k45_kernel {
  static const int bytes = Five ? 176 : 144;
  static const bool perm = true;
  static const int qs_off = Five ? 48 : 16;
  struct P {
    __m512i sc;   // the 8 scale bytes in every 64-bit lane
    __m512 umin;  // dmin * m_j (lanes 0..7; 8..15 zero)
    __m512 d;     // d, broadcast
  };

  static AGLM_K_INLINE void prep(const char *blk, P &p) {
    uint64_t sc, mn;
    aglm_k4_scales(blk + 4, &sc, &mn);
    p.sc = _mm512_set1_epi64((long long)sc);
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn)));
    p.umin = _mm512_zextps256_ps512(_mm256_mul_ps(m, _mm256_set1_ps(aglm_k_h2f(blk + 2))));
    p.d = _mm512_set1_ps(aglm_k_h2f(blk));
  }

  // Weight vector v (sub-blocks 4(v/2) + v%2 and +2) and its scale words.
  template <int V>
  static AGLM_K_INLINE void vec(const char *blk, const P &p, __m512i &q, __m512i &s) {
    const __m512i z = _mm512_loadu_si512((const void *)(blk + qs_off + 64 * (V / 2)));
    const __m512i low = _mm512_set1_epi8(0x0f);
    q = _mm512_and_si512(V % 2 ? _mm512_srli_epi16(z, 4) : z, low);
    if (Five) { // bit (sub-block) of qh[l]: sub-blocks 4(v/2) + v%2 in bytes 0..31, that + 2 in bytes 32..63
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)));
      const int a = 4 * (V / 2) + V % 2;
      const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << a)), _mm256_set1_epi8((char)(1 << (a + 2))), 1);
      q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, _mm512_set1_epi8(16));
    }
    const int a = 4 * (V / 2) + V % 2; // scale a for bytes 0..31 (lanes 0, 1), a + 2 for bytes 32..63
    s = _mm512_shuffle_epi8(p.sc, aglm_k_lane_words<false>(a, a, a + 2, a + 2));
  }

  // acc += d (d_x isum) - sum_j (dmin m_j) (d_x xsum_j)
  static AGLM_K_INLINE __m512 finish(__m512 acc, __m512i isum, const P &p, const __m512i *aux) {
    acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), aglm_k_aux_d(aux, 32)), p.d, acc);
    return _mm512_fnmadd_ps(p.umin, _mm512_castsi512_ps(_mm512_load_si512(aux)), acc);
  }
};

// Q6_K: quants 0..63 (value + 32) from 4 + 2 bits, int8 scales per 16 values.
struct aglm_q6_K_kernel {
  static const int bytes = 210;
  static const bool perm = false;
  struct P {
    __m256i sc;     // 16 x int16 group scales
    __m512i lo, hi; // groups 0..7 / 8..15 as int16 in every 128-bit lane
    __m512 d;       // d, broadcast
  };

  static AGLM_K_INLINE void prep(const char *blk, P &p) {
    p.sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
    p.lo = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p.sc));
    p.hi = _mm512_broadcast_i32x4(_mm256_extracti128_si256(p.sc, 1));
    p.d = _mm512_set1_ps(aglm_k_h2f(blk + 208));
  }

  // Vector v = values 64v..64v+63: half h = v/2 (ql[64h..], qh[32h..]); even v: low nibbles of ql[64h + 0..63] and
  // qh bits 0-1 (bytes 0..31) / 2-3 (bytes 32..63); odd v: high nibbles and bits 4-5 / 6-7.
  template <int V>
  static AGLM_K_INLINE void vec(const char *blk, const P &p, __m512i &q, __m512i &s) {
    const int h = V / 2;
    const __m512i z = _mm512_loadu_si512((const void *)(blk + 64 * h));
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
    const __m512i low = _mm512_set1_epi8(0x0f), two = _mm512_set1_epi8(0x30);
    __m512i hb;
    if (V % 2 == 0) hb = _mm512_sllv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
    else hb = _mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
    q = _mm512_or_si512(_mm512_and_si512(V % 2 ? _mm512_srli_epi16(z, 4) : z, low), _mm512_and_si512(hb, two));
    // Group 4V + L for 128-bit lane L: word (4V + L) % 8 of the low (V < 2) or high scale half.
    const int g = 4 * (V % 2);
    s = _mm512_shuffle_epi8(V < 2 ? p.lo : p.hi, aglm_k_lane_words<true>(g, g + 1, g + 2, g + 3));
  }

  static AGLM_K_INLINE __m512 finish(__m512 acc, __m512i isum, const P &p, const __m512i *aux) {
    const __m256i s2 = _mm256_madd_epi16(p.sc, aglm_k_aux_bsums(aux));
    isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_slli_epi32(s2, 5)));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), aglm_k_aux_d(aux, 0)), p.d, acc);
  }
};

// ---- tiles and the driver ---------------------------------------------------------------------------------------

struct aglm_k_job {
  const aglm_matmul_args *a;
  int64_t nsb, t0; // super-blocks per row, first token of the chunk
  const __m512i *px;
};

template <class K, int R, int T, int V>
AGLM_K_INLINE void aglm_k_step(const aglm_k_job &j, const char *const *blk, const typename K::P *p, int64_t t,
                               int64_t sb, __m512i (&acc)[R][T]) {
  __m512i q[R], s[R];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) K::template vec<V>(blk[i], p[i], q[i], s[i]);
  AGLM_UNROLL
  for (int k = 0; k < T; k++) {
    const __m512i x = j.px[((t + k) * j.nsb + sb) * aglm_k_vecs + V];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) acc[i][k] = aglm_k_madd(acc[i][k], _mm512_maddubs_epi16(q[i], x), s[i]);
  }
}

// Rows [r, r+R) x chunk tokens [t, t+T).
template <class K, int R, int T>
void aglm_k_tile(const aglm_k_job &j, int64_t r, int64_t t) {
  const aglm_matmul_args *a = j.a;
  const char *w[R];
  __m512 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = (const char *)a->w + (r + i) * (int64_t)a->w_row_bytes;
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int k = 0; k < T; k++) acc[i][k] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < j.nsb; sb++) {
    const char *blk[R];
    typename K::P p[R];
    __m512i isum[R][T];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) {
      blk[i] = w[i] + sb * K::bytes;
      K::prep(blk[i], p[i]);
    }
    AGLM_UNROLL
    for (int i = 0; i < R; i++)
      AGLM_UNROLL
      for (int k = 0; k < T; k++) isum[i][k] = _mm512_setzero_si512();
    aglm_k_step<K, R, T, 0>(j, blk, p, t, sb, isum);
    aglm_k_step<K, R, T, 1>(j, blk, p, t, sb, isum);
    aglm_k_step<K, R, T, 2>(j, blk, p, t, sb, isum);
    aglm_k_step<K, R, T, 3>(j, blk, p, t, sb, isum);
    AGLM_UNROLL
    for (int k = 0; k < T; k++) {
      const __m512i *aux = j.px + ((t + k) * j.nsb + sb) * aglm_k_vecs + 4;
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][k] = K::finish(acc[i][k], isum[i][k], p[i], aux);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int k = 0; k < T; k++) a->y[(j.t0 + t + k) * a->y_stride + r + i] = _mm512_reduce_add_ps(acc[i][k]);
}

template <class K, int R>
void aglm_k_tile_tokens(const aglm_k_job &j, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_k_tile<K, R, 1>(j, r, t); break;
  case 2: aglm_k_tile<K, R, 2>(j, r, t); break;
  case 3: aglm_k_tile<K, R, 3>(j, r, t); break;
  default: aglm_k_tile<K, R, 4>(j, r, t); break;
  }
}

// Fewer than 4 tokens: one row at a time (a linear stream per thread). Otherwise 2-row tiles over 4-token tiles.
template <class K>
void aglm_k_chunk_run(const aglm_k_job &j, int64_t tc, int64_t r0, int64_t r1) {
  int64_t r = r0;
  if (tc >= 4)
    for (; r + 2 <= r1; r += 2)
      for (int64_t t = 0; t < tc; t += 4) aglm_k_tile_tokens<K, 2>(j, r, t, tc - t < 4 ? tc - t : 4);
  for (; r < r1; r++)
    for (int64_t t = 0; t < tc; t += 4) aglm_k_tile_tokens<K, 1>(j, r, t, tc - t < 4 ? tc - t : 4);
}

// Tokens are packed in chunks of 4 to 64 whose pack stays around 256 KiB (L2).
template <class K>
void aglm_k_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  aglm_k_job j = {a, a->k / 256, 0, nullptr};
  const int64_t per_token = j.nsb * aglm_k_vecs * 64;
  int64_t chunk = per_token ? (256 * 1024) / per_token : 64;
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  if (chunk > a->n) chunk = a->n;
  __m512i *buf = (__m512i *)aglm_k_scratch_get((size_t)(chunk * per_token) + 64);
  if (!buf) return aglm_ref::matmul(a, r0, r1); // out of memory: slow but correct
  j.px = buf;
  for (j.t0 = 0; j.t0 < a->n; j.t0 += chunk) {
    const int64_t tc = a->n - j.t0 < chunk ? a->n - j.t0 : chunk;
    for (int64_t t = 0; t < tc; t++) {
      const char *x = (const char *)a->x + (j.t0 + t) * (int64_t)a->x_row_bytes;
      aglm_k_pack_token<K::perm>((const aglm_block_q8_K *)x, j.nsb, buf + t * j.nsb * aglm_k_vecs);
    }
    aglm_k_chunk_run<K>(j, tc, r0, r1);
  }
}

} // namespace
