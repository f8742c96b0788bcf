// AVX-512 Q8_0/Q4_0 matmul with AVX512_VNNI (vpdpbusd); built with -mavx512vnni, called only after a cpuid check.
#include <immintrin.h>

#include "kernels/x86-avx512/avx512-internal.h"

namespace {

inline __m512i aglm_q_dot(__m512i acc, __m512i u8, __m512i s8) { return _mm512_dpbusd_epi32(acc, u8, s8); }

} // namespace

#include "kernels/x86-avx512/avx512-matmul-q.h"

namespace aglm_avx512 {

void matmul_q_vnni(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) aglm_q_run<aglm_q8_0_kernel<true>>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) aglm_q_run<aglm_q4_0_kernel>(a, r0, r1);
}

} // namespace aglm_avx512
