// AVX-512 Q8_0/Q4_0 matmul with AVX512_VNNI (vpdpbusd); built with -mavx512vnni, called only after a cpuid check.
#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-matmul-q.h"

namespace {

// w + 128 as u8 (w ^ 0x80) against signed x; the bias removes 128 * sum(x).
struct aglm_q8_0_vnni_dot {
  static const bool q4 = false;
  static const int bias_mul = 128;
  typedef __m512i W;
  static W prep(__m512i raw) { return _mm512_xor_si512(raw, _mm512_set1_epi8((char)0x80)); }
  static __m512i dot(__m512i acc, const W &w, __m512i x) { return _mm512_dpbusd_epi32(acc, w, x); }
};

// Nibbles (0..15) are already unsigned; the bias removes 8 * sum(x).
struct aglm_q4_0_vnni_dot {
  static const bool q4 = true;
  static const int bias_mul = 8;
  typedef __m512i W;
  static W prep(__m512i raw) { return raw; }
  static __m512i dot(__m512i acc, const W &w, __m512i x) { return _mm512_dpbusd_epi32(acc, w, x); }
};

} // namespace

namespace aglm_avx512 {

void matmul_q_vnni(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) aglm_q_run<aglm_q8_0_vnni_dot>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) aglm_q_run<aglm_q4_0_vnni_dot>(a, r0, r1);
}

} // namespace aglm_avx512
