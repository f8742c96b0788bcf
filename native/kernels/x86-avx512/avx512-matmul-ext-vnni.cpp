// AVX-512 matmul for Q4_1, Q5_0, Q5_1 and Q4_K, Q5_K, Q6_K with AVX512_VNNI (vpdpbusd for the 32-value blocks,
// vpdpwssd to apply the K-quant sub-block scales); built with -mavx512vnni, called only after a cpuid check.
#include <immintrin.h>

#include "kernels/x86-avx512/avx512-internal.h"

namespace {

inline __m512i aglm_q_dot(__m512i acc, __m512i u8, __m512i s8) { return _mm512_dpbusd_epi32(acc, u8, s8); }

inline __m512i aglm_k_madd(__m512i acc, __m512i p16, __m512i s16) { return _mm512_dpwssd_epi32(acc, p16, s16); }

} // namespace

#include "kernels/x86-avx512/avx512-matmul-q.h"
#include "kernels/x86-avx512/avx512-matmul-q1.h"
#include "kernels/x86-avx512/avx512-matmul-k.h"

namespace aglm_avx512 {

void matmul_ext_vnni(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
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
