// AVX-512 matmul for Q4_1, Q5_0, Q5_1 (quad kernels of avx512-matmul-q1.h) and Q4_K, Q5_K, Q6_K
// (avx512-matmul-k.h) on CPUs without VNNI: int8 dots by vpmaddubsw + vpmaddwd (AVX512BW).
#include <immintrin.h>

#include "kernels/x86-avx512/avx512-internal.h"

namespace {

// u8 <= 31 (Q4_1/Q5_0/Q5_1 quants) and |s8| <= 127: the i16 pair sums cannot saturate.
inline __m512i aglm_q_dot(__m512i acc, __m512i u8, __m512i s8) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)));
}

inline __m512i aglm_k_madd(__m512i acc, __m512i p16, __m512i s16) { return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, s16)); }

} // namespace

#include "kernels/x86-avx512/avx512-matmul-q.h"
#include "kernels/x86-avx512/avx512-matmul-q1.h"
#include "kernels/x86-avx512/avx512-matmul-k.h"

namespace aglm_avx512 {

void matmul_ext(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_Q4_1: aglm_q_run<aglm_q4_1_kernel>(a, r0, r1); return;
  case AGLM_TYPE_Q5_0: aglm_q_run<aglm_q5_0_kernel>(a, r0, r1); return;
  case AGLM_TYPE_Q5_1: aglm_q_run<aglm_q5_1_kernel>(a, r0, r1); return;
  case AGLM_TYPE_Q4_K: aglm_k_run<aglm_k45_kernel<false>>(a, r0, r1); return;
  case AGLM_TYPE_Q5_K: aglm_k_run<aglm_k45_kernel<true>>(a, r0, r1); return;
  case AGLM_TYPE_Q6_K: aglm_k_run<aglm_q6_K_kernel>(a, r0, r1); return;
  default: return;
  }
}

} // namespace aglm_avx512
