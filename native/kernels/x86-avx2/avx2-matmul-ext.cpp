// AVX2 matmul for the other llama.cpp types: Q5_0 x Q8_0, Q4_1 / Q5_1 x Q8_1 (blocks of 32) and Q4_K / Q5_K / Q6_K
// x Q8_K (super-blocks of 256). The integer sums are the reference's, exactly; only the float part differs in order.
//
// Blocks of 32: one ymm of 32 quants per block (the nibbles of 16 bytes spread over the two lanes, the 5th bits of
// qh turned into a byte mask), then vpmaddubsw + vpmaddwd into 8 int32 lanes and one FMA with d_w d_x. Q5_0 values
// are signed (-16..15) and use the sign trick (|w|, x * sign(w)); Q4_1/Q5_1 quants are unsigned and go in directly,
// their min term m_w s_x is added to lane 0.
// K-quants: per super-block, 8 vectors of 32 quants in value order (so the Q8_K row is read as it is, no packing),
// each vpmaddubsw'd with its 32 activations and vpmaddwd'd with a vector of its sub-block scale, into 8 int32 lanes;
// then Q4_K/Q5_K: acc += d_w d_x S1 - dmin_w d_x S2 (S2: vpmaddwd of the mins with the Q8_K bsums), Q6_K: acc +=
// d_w d_x (S1 - 32 sum_g scale_g bsum_g).
// Decoding (fewer than 4 tokens) reads weight rows one after another; prefill walks L2-sized token chunks, rows
// outer, with 2-row x 4-token tiles (blocks of 32) or 1-row x 4-token tiles (K-quants, whose scale vectors take
// registers), so each weight vector serves 4 tokens.
#include <immintrin.h>
#include <string.h>

#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx2/avx2-internal.h"
#include "kernels/x86-avx2/avx2-math.h"

namespace {

inline float aglm_h2f(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline const char *aglm_w_row(const aglm_matmul_args *a, int64_t r) {
  return (const char *)a->w + r * (int64_t)a->w_row_bytes;
}
inline const char *aglm_x_row(const aglm_matmul_args *a, int64_t t) {
  return (const char *)a->x + t * (int64_t)a->x_row_bytes;
}

// The 16 bytes at p as 32 nibbles: value j (low nibble of byte j) in byte j, value j+16 (high nibble) in byte j+16.
inline __m256i aglm_nibbles32(const char *p) {
  const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
  return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// 0xff in byte j where bit j of the 32-bit qh at p is set.
inline __m256i aglm_bit_mask32(const char *p) {
  uint32_t qh;
  memcpy(&qh, p, 4);
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                        3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), pick);
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// Block-of-32 weight types. values(): the 32 quants (value j in byte j). Signed: int8 values for the sign trick;
// otherwise unsigned quants. Q8_1 activations bring the min term m_w * s_x.
struct aglm_q5_0_w {
  static const int bytes = 22, x_bytes = 34, x_qs = 2;
  static const bool is_signed = true, has_min = false;
  static __m256i values(const char *b) { // (nibble | bit << 4) - 16 = nibble | (bit ? 0 : 0xf0) as int8
    return _mm256_or_si256(aglm_nibbles32(b + 6), _mm256_andnot_si256(aglm_bit_mask32(b + 2), _mm256_set1_epi8((char)0xf0)));
  }
};
struct aglm_q4_1_w {
  static const int bytes = 20, x_bytes = 36, x_qs = 4;
  static const bool is_signed = false, has_min = true;
  static __m256i values(const char *b) { return aglm_nibbles32(b + 4); }
};
struct aglm_q5_1_w {
  static const int bytes = 24, x_bytes = 36, x_qs = 4;
  static const bool is_signed = false, has_min = true;
  static __m256i values(const char *b) {
    return _mm256_or_si256(aglm_nibbles32(b + 8), _mm256_and_si256(aglm_bit_mask32(b + 4), _mm256_set1_epi8(0x10)));
  }
};

// The 8 int32 partial sums of a block's integer dot (|q x| pair sums <= 2 * 31 * 127 or, with the sign trick,
// 2 * 16 * 127: no int16 saturation; activations never hold -128).
template <class B>
inline __m256i aglm_block_isum(__m256i w, __m256i aw, __m256i x) {
  const __m256i p16 = B::is_signed ? _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)) : _mm256_maddubs_epi16(w, x);
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// Rows [r, r+R) x tokens [t, t+T); U accumulator sets take alternate blocks (U = 2 hides the FMA latency when a
// single row and few tokens leave little else to do).
template <class B, int R, int T, int U>
void aglm_b32_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const char *x[T];
  __m256 acc[U][R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = aglm_w_row(a, r + i);
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, t + j);
  AGLM_UNROLL
  for (int u = 0; u < U; u++)
    AGLM_UNROLL
    for (int i = 0; i < R; i++)
      AGLM_UNROLL
      for (int j = 0; j < T; j++) acc[u][i][j] = _mm256_setzero_ps();
  const int64_t nb = a->k / 32;
  for (int64_t b0 = 0; b0 < nb; b0 += U) {
    AGLM_UNROLL
    for (int u = 0; u < U; u++) {
      const int64_t b = b0 + u;
      if (U > 1 && b >= nb) break;
      __m256i wv[R], aw[R];
      float dw[R], mw[R];
      AGLM_UNROLL
      for (int i = 0; i < R; i++) {
        const char *blk = w[i] + b * B::bytes;
        wv[i] = B::values(blk);
        aw[i] = B::is_signed ? _mm256_sign_epi8(wv[i], wv[i]) : wv[i];
        dw[i] = aglm_h2f(blk);
        mw[i] = B::has_min ? aglm_h2f(blk + 2) : 0.0f;
      }
      AGLM_UNROLL
      for (int j = 0; j < T; j++) {
        const char *xb = x[j] + b * B::x_bytes;
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb + B::x_qs));
        const float dx = aglm_h2f(xb), sx = B::has_min ? aglm_h2f(xb + 2) : 0.0f;
        AGLM_UNROLL
        for (int i = 0; i < R; i++) {
          const __m256 s = _mm256_cvtepi32_ps(aglm_block_isum<B>(wv[i], aw[i], xv));
          acc[u][i][j] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw[i] * dx), acc[u][i][j]);
          if (B::has_min) acc[u][i][j] = _mm256_add_ps(acc[u][i][j], _mm256_zextps128_ps256(_mm_set_ss(mw[i] * sx)));
        }
      }
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      __m256 s = acc[0][i][j];
      AGLM_UNROLL
      for (int u = 1; u < U; u++) s = _mm256_add_ps(s, acc[u][i][j]);
      a->y[(t + j) * a->y_stride + r + i] = aglm_hsum8(s);
    }
}

// ---- K-quants --------------------------------------------------------------------------------------------------

// Word j (of 8 in each lane) repeated: the vpshufb control that broadcasts a sub-block scale over a lane.
inline __m256i aglm_word_bcast(int lo, int hi) {
  return _mm256_setr_epi8((char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo),
                          (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1),
                          (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo), (char)(2 * lo + 1), (char)(2 * lo),
                          (char)(2 * lo + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                          (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi),
                          (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1), (char)(2 * hi), (char)(2 * hi + 1),
                          (char)(2 * hi), (char)(2 * hi + 1));
}

// Q4_K (Five = false) and Q5_K (Five = true): sub-block J = the low (J even) or high nibbles of qs[32 (J/2)..].
template <bool Five>
struct aglm_k45_kernel {
  static const int bytes = Five ? 176 : 144, qs_off = Five ? 48 : 16;
  struct P {
    __m256i sc;   // the 8 sub-block scales as int16, in both lanes
    __m256i mins; // 16 x int16: min j at words 2j, 2j+1 (one per bsum)
    float d, dmin;
  };

  static inline void prep(const char *blk, P &p) {
    uint32_t a, b, c;
    memcpy(&a, blk + 4, 4), memcpy(&b, blk + 8, 4), memcpy(&c, blk + 12, 4);
    const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x30303030u;
    const uint64_t sc = (uint64_t)(a & low6) | (uint64_t)((c & low4) | ((a >> 2) & top2)) << 32;
    const uint64_t mn = (uint64_t)(b & low6) | (uint64_t)(((c >> 4) & low4) | ((b >> 2) & top2)) << 32;
    p.sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    const __m128i m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn));
    p.mins = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(m, m)), _mm_unpackhi_epi16(m, m), 1);
    p.d = aglm_h2f(blk);
    p.dmin = aglm_h2f(blk + 2);
  }

  template <int J>
  static inline void vec(const char *blk, const P &p, __m256i &q, __m256i &s) {
    const __m256i z = _mm256_loadu_si256((const __m256i *)(blk + qs_off + 32 * (J / 2)));
    q = _mm256_and_si256(J % 2 ? _mm256_srli_epi16(z, 4) : z, _mm256_set1_epi8(0x0f));
    if (Five) { // bit J of qh[l] -> bit 4 (a 16-bit shift moves no other byte's bit to position 4)
      const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16));
      const __m256i hb = J <= 4 ? _mm256_slli_epi16(qh, 4 - J) : _mm256_srli_epi16(qh, J - 4);
      q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
    }
    s = _mm256_shuffle_epi8(p.sc, aglm_word_bcast(J, J));
  }

  static inline __m256 finish(__m256 acc, __m256i isum, const P &p, const char *xb) {
    float dx;
    memcpy(&dx, xb, 4);
    const __m256i s2 = _mm256_madd_epi16(p.mins, _mm256_loadu_si256((const __m256i *)(xb + 260)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(p.d * dx), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2), _mm256_set1_ps(-(p.dmin * dx)), acc);
  }
};

// Q6_K: sub-block J (values 32J..32J+31) of half J/4; quants 0..63 are value + 32.
struct aglm_q6_K_kernel {
  static const int bytes = 210;
  struct P {
    __m256i sc;     // 16 x int16 group scales
    __m256i lo, hi; // groups 0..7 / 8..15 in both lanes
    float d;
  };

  static inline void prep(const char *blk, P &p) {
    p.sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
    p.lo = _mm256_permute2x128_si256(p.sc, p.sc, 0x00);
    p.hi = _mm256_permute2x128_si256(p.sc, p.sc, 0x11);
    p.d = aglm_h2f(blk + 208);
  }

  template <int J>
  static inline void vec(const char *blk, const P &p, __m256i &q, __m256i &s) {
    const int h = J / 4, i = J % 4;
    const __m256i z = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32 * (i % 2)));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
    const __m256i nib = _mm256_and_si256(i >= 2 ? _mm256_srli_epi16(z, 4) : z, _mm256_set1_epi8(0x0f));
    const __m256i hb = i == 0 ? _mm256_slli_epi16(qh, 4) : i == 1 ? _mm256_slli_epi16(qh, 2) : i == 2 ? qh : _mm256_srli_epi16(qh, 2);
    q = _mm256_or_si256(nib, _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
    s = _mm256_shuffle_epi8(J < 4 ? p.lo : p.hi, aglm_word_bcast((2 * J) % 8, (2 * J + 1) % 8));
  }

  static inline __m256 finish(__m256 acc, __m256i isum, const P &p, const char *xb) {
    float dx;
    memcpy(&dx, xb, 4);
    const __m256i s2 = _mm256_madd_epi16(p.sc, _mm256_loadu_si256((const __m256i *)(xb + 260)));
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(s2, 5));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(p.d * dx), acc);
  }
};

template <class K, int T, int J>
inline void aglm_k_step(const char *blk, const typename K::P &p, const char *const *xb, __m256i (&isum)[T]) {
  __m256i q, s;
  K::template vec<J>(blk, p, q, s);
  AGLM_UNROLL
  for (int j = 0; j < T; j++) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(xb[j] + 4 + 32 * J));
    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), s));
  }
}

// Row r x tokens [t, t+T).
template <class K, int T>
void aglm_k_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w = aglm_w_row(a, r);
  const char *x[T];
  __m256 acc[T];
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, t + j), acc[j] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < a->k / 256; sb++) {
    const char *blk = w + sb * K::bytes;
    const char *xb[T];
    __m256i isum[T];
    typename K::P p;
    K::prep(blk, p);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) xb[j] = x[j] + sb * 292, isum[j] = _mm256_setzero_si256();
    aglm_k_step<K, T, 0>(blk, p, xb, isum);
    aglm_k_step<K, T, 1>(blk, p, xb, isum);
    aglm_k_step<K, T, 2>(blk, p, xb, isum);
    aglm_k_step<K, T, 3>(blk, p, xb, isum);
    aglm_k_step<K, T, 4>(blk, p, xb, isum);
    aglm_k_step<K, T, 5>(blk, p, xb, isum);
    aglm_k_step<K, T, 6>(blk, p, xb, isum);
    aglm_k_step<K, T, 7>(blk, p, xb, isum);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[j] = K::finish(acc[j], isum[j], p, xb[j]);
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r] = aglm_hsum8(acc[j]);
}

// Kinds: tile<R, T>(a, r, t) for rows [r, r+R) x tokens [t, t+T); rows: the prefill tile height; x_bytes: bytes of
// activations per value (chunk sizing).
template <class B>
struct aglm_b32_kind {
  static const int rows = 2;
  static constexpr double x_bytes = B::x_bytes / 32.0;
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
    aglm_b32_tile<B, R, T, (R == 1 && T < 4) ? 2 : 1>(a, r, t);
  }
};
template <class K>
struct aglm_k_kind {
  static const int rows = 1;
  static constexpr double x_bytes = 292 / 256.0;
  template <int R, int T>
  static void tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
    aglm_k_tile<K, T>(a, r, t);
  }
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

// Fewer than 4 tokens: rows one after another, all tokens at once. Otherwise token chunks whose activations stay in
// L2 (~256 KiB), and per chunk K::rows-row tiles (rows outer) over 4-token tiles.
template <class K>
void aglm_ext_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  if (a->n < 4) {
    for (int64_t r = r0; r < r1; r++) aglm_tile_tokens<K, 1>(a, r, 0, a->n);
    return;
  }
  int64_t chunk = (int64_t)((256 * 1024) / (a->k * K::x_bytes + 64));
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t t1 = a->n - t0 < chunk ? a->n : t0 + chunk;
    int64_t r = r0;
    if (K::rows == 2)
      for (; r + 2 <= r1; r += 2)
        for (int64_t t = t0; t < t1; t += 4) aglm_tile_tokens<K, 2>(a, r, t, t1 - t < 4 ? t1 - t : 4);
    for (; r < r1; r++)
      for (int64_t t = t0; t < t1; t += 4) aglm_tile_tokens<K, 1>(a, r, t, t1 - t < 4 ? t1 - t : 4);
  }
}

} // namespace

namespace aglm_avx2 {

void matmul_ext(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_Q4_1: aglm_ext_run<aglm_b32_kind<aglm_q4_1_w>>(a, r0, r1); return;
  case AGLM_TYPE_Q5_0: aglm_ext_run<aglm_b32_kind<aglm_q5_0_w>>(a, r0, r1); return;
  case AGLM_TYPE_Q5_1: aglm_ext_run<aglm_b32_kind<aglm_q5_1_w>>(a, r0, r1); return;
  case AGLM_TYPE_Q4_K: aglm_ext_run<aglm_k_kind<aglm_k45_kernel<false>>>(a, r0, r1); return;
  case AGLM_TYPE_Q5_K: aglm_ext_run<aglm_k_kind<aglm_k45_kernel<true>>>(a, r0, r1); return;
  case AGLM_TYPE_Q6_K: aglm_ext_run<aglm_k_kind<aglm_q6_K_kernel>>(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_avx2
