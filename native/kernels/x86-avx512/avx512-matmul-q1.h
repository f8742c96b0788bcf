// AVX-512 kernels for the other 32-value block types, on the quad driver of avx512-matmul-q.h (include that first,
// after defining aglm_q_dot): Q5_0 x Q8_0, and Q4_1 / Q5_1 x Q8_1. Internal linkage only, like that header.
//
// The weight loads gather a quad's quants and fp16 fields with word permutes from two overlapping 64-byte loads, as
// the Q4_0 kernel does. The 5th bits (32 per block in qh) become a byte mask per vector: each block's qh is spread
// over its 128-bit lane, one byte per value picked by vpshufb and tested against that value's bit.
//   Q5_0: dot(nibble | bit << 4, x) = sum (w + 16) x, so the pack's bias is -16 * sum x (Q8_0 pack, bias 16).
//   Q4_1, Q5_1: dot(q, x) * d_w d_x + m_w s_x, with the Q8_1 pack below carrying s_x in lane 0 of each block's group
//   (the other 3 lanes 0), so one FMA with m_w spread over the group adds m_w s_x once per block.
#pragma once

namespace {

// Q8_1 activations: the same 4 vectors per quad as the Q8_0 pack, with s_x in place of the integer bias.
inline void aglm_q8_1_pack_quad(const aglm_block_q8_1 *x, int nb, __m512i *dst) {
  static const int8_t zero[32] = {0};
  __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  float d[4] = {0, 0, 0, 0}, s[4] = {0, 0, 0, 0};
  for (int b = 0; b < 4; b++) {
    const int8_t *qs = b < nb ? x[b].qs : zero;
    const __m512i l = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)qs));
    const __m512i h = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(qs + 16)));
    lo = _mm512_mask_shuffle_i32x4(lo, (__mmask16)(0xf << (4 * b)), l, l, 0);
    hi = _mm512_mask_shuffle_i32x4(hi, (__mmask16)(0xf << (4 * b)), h, h, 0);
    if (b < nb) d[b] = _cvtsh_ss(x[b].d), s[b] = _cvtsh_ss(x[b].s);
  }
  dst[0] = lo, dst[1] = hi;
  dst[2] = _mm512_castps_si512(aglm_q_spread(_mm_loadu_ps(d), aglm_q_idx_quarters()));
  dst[3] = _mm512_castps_si512(_mm512_maskz_mov_ps(0x1111, aglm_q_spread(_mm_loadu_ps(s), aglm_q_idx_quarters())));
}

inline void aglm_q8_1_pack_token(const char *x, int64_t nb, __m512i *dst) {
  const aglm_block_q8_1 *b = (const aglm_block_q8_1 *)x;
  for (int64_t q = 0; q < (nb + 3) / 4; q++) {
    const int64_t left = nb - 4 * q;
    aglm_q8_1_pack_quad(b + 4 * q, left < 4 ? (int)left : 4, dst + q * aglm_q_vecs);
  }
}

// Adds 16 to the values whose 5th bit is set. qh4: the quad's 4 qh words (block b in dword b); lo holds values
// 0..15 of block b in lane b (bits 0..15 of its qh), hi values 16..31 (bits 16..31).
AGLM_Q_INLINE void aglm_q5_high_bits(__m128i qh4, __m512i &lo, __m512i &hi) {
  const __m512i h = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                             _mm512_castsi128_si512(qh4));
  const __m512i pick_lo = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m512i pick_hi = _mm512_broadcast_i32x4(_mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m512i bit = _mm512_broadcast_i32x4(
      _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128));
  const __m512i sixteen = _mm512_set1_epi8(16);
  const __mmask64 klo = _mm512_test_epi8_mask(_mm512_shuffle_epi8(h, pick_lo), bit);
  const __mmask64 khi = _mm512_test_epi8_mask(_mm512_shuffle_epi8(h, pick_hi), bit);
  lo = _mm512_mask_add_epi8(lo, klo, lo, sixteen);
  hi = _mm512_mask_add_epi8(hi, khi, hi, sixteen);
}

AGLM_Q_INLINE void aglm_q_nibbles(__m512i q, __m512i &lo, __m512i &hi) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  lo = _mm512_and_si512(q, low);
  hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
}

// Q5_0 (22-byte blocks: d, qh[4], qs[16]; block b at word 11b). Bytes 0..63 and 24..87 of the quad.
struct aglm_q5_0_kernel {
  static const int bytes = 22;
  static const int bias_mul = 16;
  struct W {
    __m512i lo, hi;
    __m512 d;
  };

  template <int NB>
  static AGLM_Q_INLINE W load(const char *blk) {
    static const uint16_t q_w[32] = {3,  4,  5,  6,  7,  8,  9,  10, 14, 15, 16, 17, 18, 19, 20, 21,
                                     25, 26, 27, 28, 29, 30, 31, 52, 56, 57, 58, 59, 60, 61, 62, 63};
    static const uint16_t f_w[32] = {0, 0, 0, 0, 11, 11, 11, 11, 22, 22, 22, 22, 53, 53, 53, 53,
                                     1, 2, 12, 13, 23, 24, 54, 55, 0, 0, 0, 0, 0, 0, 0, 0};
    const __m512i z0 = aglm_q_bytes<NB * bytes, 0>(blk), z1 = aglm_q_bytes<NB * bytes, 24>(blk);
    const __m512i f = _mm512_permutex2var_epi16(z0, aglm_q_words(f_w), z1);
    W w;
    aglm_q_nibbles(_mm512_permutex2var_epi16(z0, aglm_q_words(q_w), z1), w.lo, w.hi);
    aglm_q5_high_bits(_mm512_extracti32x4_epi32(f, 2), w.lo, w.hi);
    w.d = _mm512_cvtph_ps(_mm512_castsi512_si256(f));
    return w;
  }

  static AGLM_Q_INLINE __m512 accumulate(__m512 acc, const W &w, const __m512i *px) {
    const __m512 s = _mm512_cvtepi32_ps(aglm_q_dot(aglm_q_dot(px[3], w.lo, px[0]), w.hi, px[1]));
    return _mm512_fmadd_ps(s, _mm512_mul_ps(w.d, _mm512_castsi512_ps(px[2])), acc);
  }
};

// Q4_1 (20-byte blocks: d, m, qs[16]; block b at word 10b). Bytes 0..63 and 16..79 of the quad.
struct aglm_q4_1_kernel {
  static const int bytes = 20;
  static const int bias_mul = 0;
  struct W {
    __m512i lo, hi;
    __m512 d, m;
  };

  static void pack_token(const char *x, int64_t nb, __m512i *dst) { aglm_q8_1_pack_token(x, nb, dst); }

  template <int NB>
  static AGLM_Q_INLINE W load(const char *blk) {
    static const uint16_t q_w[32] = {2,  3,  4,  5,  6,  7,  8,  9,  12, 13, 14, 15, 16, 17, 18, 19,
                                     22, 23, 24, 25, 26, 27, 28, 29, 56, 57, 58, 59, 60, 61, 62, 63};
    static const uint16_t f_w[32] = {0, 0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30,
                                     1, 1, 1, 1, 11, 11, 11, 11, 21, 21, 21, 21, 31, 31, 31, 31};
    const __m512i z0 = aglm_q_bytes<NB * bytes, 0>(blk), z1 = aglm_q_bytes<NB * bytes, 16>(blk);
    const __m512i f = _mm512_permutexvar_epi16(aglm_q_words(f_w), z0);
    W w;
    aglm_q_nibbles(_mm512_permutex2var_epi16(z0, aglm_q_words(q_w), z1), w.lo, w.hi);
    w.d = _mm512_cvtph_ps(_mm512_castsi512_si256(f));
    w.m = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(f, 1));
    return w;
  }

  static AGLM_Q_INLINE __m512 accumulate(__m512 acc, const W &w, const __m512i *px) {
    const __m512 s = _mm512_cvtepi32_ps(aglm_q_dot(aglm_q_dot(_mm512_setzero_si512(), w.lo, px[0]), w.hi, px[1]));
    acc = _mm512_fmadd_ps(s, _mm512_mul_ps(w.d, _mm512_castsi512_ps(px[2])), acc);
    return _mm512_fmadd_ps(w.m, _mm512_castsi512_ps(px[3]), acc);
  }
};

// Q5_1 (24-byte blocks: d, m, qh[4], qs[16]; block b at word 12b). Bytes 0..63 and 32..95 of the quad.
struct aglm_q5_1_kernel {
  static const int bytes = 24;
  static const int bias_mul = 0;
  struct W {
    __m512i lo, hi;
    __m512 d, m;
  };

  static void pack_token(const char *x, int64_t nb, __m512i *dst) { aglm_q8_1_pack_token(x, nb, dst); }

  template <int NB>
  static AGLM_Q_INLINE W load(const char *blk) {
    static const uint16_t q_w[32] = {4,  5,  6,  7,  8,  9,  10, 11, 16, 17, 18, 19, 20, 21, 22, 23,
                                     28, 29, 30, 31, 48, 49, 50, 51, 56, 57, 58, 59, 60, 61, 62, 63};
    static const uint16_t f_w[32] = {0, 0, 0, 0, 12, 12, 12, 12, 24, 24, 24, 24, 52, 52, 52, 52,
                                     1, 1, 1, 1, 13, 13, 13, 13, 25, 25, 25, 25, 53, 53, 53, 53};
    static const uint16_t h_w[32] = {2, 3, 14, 15, 26, 27, 54, 55};
    const __m512i z0 = aglm_q_bytes<NB * bytes, 0>(blk), z1 = aglm_q_bytes<NB * bytes, 32>(blk);
    const __m512i f = _mm512_permutex2var_epi16(z0, aglm_q_words(f_w), z1);
    W w;
    aglm_q_nibbles(_mm512_permutex2var_epi16(z0, aglm_q_words(q_w), z1), w.lo, w.hi);
    aglm_q5_high_bits(_mm512_castsi512_si128(_mm512_permutex2var_epi16(z0, aglm_q_words(h_w), z1)), w.lo, w.hi);
    w.d = _mm512_cvtph_ps(_mm512_castsi512_si256(f));
    w.m = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(f, 1));
    return w;
  }

  static AGLM_Q_INLINE __m512 accumulate(__m512 acc, const W &w, const __m512i *px) {
    return aglm_q4_1_kernel::accumulate(acc, {w.lo, w.hi, w.d, w.m}, px);
  }
};

} // namespace
