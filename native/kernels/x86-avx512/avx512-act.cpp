// AVX-512 quantize_row_act: activation rows in Q8_0, Q8_1 or Q8_K, bit-identical to aglm_ref::quantize_row_act.
#include <immintrin.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-internal.h"

namespace {

// Max |x| over 16n floats; NaN lanes are skipped (vmaxps returns its second operand when either is NaN).
inline float aglm_amax(const float *x, int n16) {
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < n16; i++) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), m);
  return _mm512_reduce_max_ps(m);
}

// Q8_1 = the Q8_0 block (same d and q) plus s = fp16(d * sum q), d before its fp16 rounding.
void aglm_q8_1_block(const float *x, aglm_block_q8_1 *y) {
  aglm_block_q8_0 b;
  aglm_avx512::quantize_row_q8_0(x, &b, 32);
  const float d = aglm_amax(x, 2) / 127.0f;
  const __m512i q = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)b.qs));
  const int sum = _mm512_reduce_add_epi32(_mm512_madd_epi16(q, _mm512_set1_epi16(1)));
  y->d = b.d;
  y->s = aglm_fp32_to_fp16((float)sum * d);
  memcpy(y->qs, b.qs, 32);
}

// Q8_K: iscale = -127 / (the value of largest magnitude, the first one in order), q = round-half-even(iscale * x)
// (vcvtps2dq under the default rounding mode), NaN products -> 0; d = 1 / iscale; bsums per 16.
void aglm_q8_K_block(const float *x, aglm_block_q8_K *y) {
  const float amax = aglm_amax(x, 16);
  if (!(amax != 0.0f)) {
    memset(y, 0, sizeof *y);
    return;
  }
  float max = 0.0f;
  const __m512 am = _mm512_set1_ps(amax);
  for (int i = 0; i < 16; i++) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), am, _CMP_EQ_OQ);
    if (hit) { // the first lane that holds it
      int j = 0;
      while (!((hit >> j) & 1)) j++;
      max = x[16 * i + j];
      break;
    }
  }
  const float iscale = -127.0f / max;
  const __m512 is = _mm512_set1_ps(iscale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int g = 0; g < 16; g++) {
    const __m512 p = _mm512_mul_ps(is, _mm512_loadu_ps(x + 16 * g));
    const __mmask16 ord = _mm512_cmp_ps_mask(p, p, _CMP_ORD_Q);
    __m512i q = _mm512_maskz_cvtps_epi32(ord, p);
    q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
    _mm_storeu_si128((__m128i *)(y->qs + 16 * g), _mm512_cvtepi32_epi8(q));
    y->bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
  }
  y->d = 1 / iscale;
}

} // namespace

namespace aglm_avx512 {

void quantize_row_act(int act_type, const float *x, void *y, int64_t k) {
  switch (act_type) {
  case AGLM_TYPE_Q8_0: quantize_row_q8_0(x, y, k); break;
  case AGLM_TYPE_Q8_1:
    for (int64_t i = 0; i < k / 32; i++) aglm_q8_1_block(x + 32 * i, (aglm_block_q8_1 *)y + i);
    break;
  case AGLM_TYPE_Q8_K:
    for (int64_t i = 0; i < k / 256; i++) aglm_q8_K_block(x + 256 * i, (aglm_block_q8_K *)y + i);
    break;
  default: break;
  }
}

} // namespace aglm_avx512
