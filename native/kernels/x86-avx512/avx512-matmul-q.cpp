// AVX-512 Q8_0/Q4_0 matmul for CPUs without VNNI: int8 dots by vpmaddubsw + vpmaddwd (AVX512BW).
#include <immintrin.h>

#include "kernels/x86-avx512/avx512-internal.h"

namespace {

// u8 <= 128 and |s8| <= 127 (sign trick) or u8 <= 15 (Q4_0 nibbles): the i16 pair sums cannot saturate.
inline __m512i aglm_q_dot(__m512i acc, __m512i u8, __m512i s8) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)));
}

} // namespace

#include "kernels/x86-avx512/avx512-matmul-q.h"

namespace aglm_avx512 {

void matmul_q(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) aglm_q_run<aglm_q8_0_kernel<false>>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) aglm_q_run<aglm_q4_0_kernel>(a, r0, r1);
}

} // namespace aglm_avx512
