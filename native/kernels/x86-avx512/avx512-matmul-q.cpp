// AVX-512 Q8_0/Q4_0 matmul for CPUs without VNNI: int8 dots by vpmaddubsw + vpmaddwd (AVX512BW).
#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-matmul-q.h"

namespace {

inline __m512i aglm_bw_dot(__m512i acc, __m512i u8, __m512i s8) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)));
}

// Sign trick: |w| (as u8, so -128 -> 128) times x * sign(w); |x| <= 127 keeps the i16 pair sums below 32767.
struct aglm_q8_0_bw_dot {
  static const bool q4 = false;
  static const int bias_mul = 0;
  struct W {
    __m512i abs;
    __mmask64 neg;
  };
  static W prep(__m512i raw) { return {_mm512_abs_epi8(raw), _mm512_movepi8_mask(raw)}; }
  static __m512i dot(__m512i acc, const W &w, __m512i x) {
    return aglm_bw_dot(acc, w.abs, _mm512_mask_sub_epi8(x, w.neg, _mm512_setzero_si512(), x));
  }
};

// Nibbles (0..15) are already unsigned; the -8 is the bias.
struct aglm_q4_0_bw_dot {
  static const bool q4 = true;
  static const int bias_mul = 8;
  typedef __m512i W;
  static W prep(__m512i raw) { return raw; }
  static __m512i dot(__m512i acc, const W &w, __m512i x) { return aglm_bw_dot(acc, w, x); }
};

} // namespace

namespace aglm_avx512 {

void matmul_q(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) aglm_q_run<aglm_q8_0_bw_dot>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) aglm_q_run<aglm_q4_0_bw_dot>(a, r0, r1);
}

} // namespace aglm_avx512
