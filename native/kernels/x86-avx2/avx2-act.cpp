// AVX2 quantize_row_act: activation rows in Q8_0, Q8_1 or Q8_K, bit-identical to aglm_ref::quantize_row_act.
#include <immintrin.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx2/avx2-internal.h"
#include "kernels/x86-avx2/avx2-math.h"

namespace {

// Max |x| over 8n floats; NaN lanes are skipped (vmaxps returns its second operand when either is NaN).
inline float aglm_amax(const float *x, int n8) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n8; i++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i)), m);
  return aglm_hmax8(m);
}

inline int aglm_hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Q8_1 = the Q8_0 block (same d and q) plus s = fp16(d * sum q), d before its fp16 rounding.
void aglm_q8_1_block(const float *x, aglm_block_q8_1 *y) {
  aglm_block_q8_0 b;
  aglm_avx2::quantize_row_q8_0(x, &b, 32);
  const float d = aglm_amax(x, 4) / 127.0f;
  const __m256i q = _mm256_loadu_si256((const __m256i *)b.qs);
  const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
  const int sum = aglm_hsum_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
  y->d = b.d;
  y->s = aglm_fp32_to_fp16((float)sum * d);
  memcpy(y->qs, b.qs, 32);
}

// Q8_K: iscale = -127 / (the value of largest magnitude, the first one in order), q = round-half-even(iscale * x)
// (vcvtps2dq under the default rounding mode), NaN products -> 0; d = 1 / iscale; bsums per 16.
void aglm_q8_K_block(const float *x, aglm_block_q8_K *y) {
  const float amax = aglm_amax(x, 32);
  if (!(amax != 0.0f)) {
    memset(y, 0, sizeof *y);
    return;
  }
  const __m256 sign = _mm256_set1_ps(-0.0f), am = _mm256_set1_ps(amax);
  float max = 0.0f;
  for (int i = 0; i < 32; i++) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i)), am, _CMP_EQ_OQ));
    if (hit) { // the first lane that holds it
      int j = 0;
      while (!((hit >> j) & 1)) j++;
      max = x[8 * i + j];
      break;
    }
  }
  const float iscale = -127.0f / max;
  const __m256 is = _mm256_set1_ps(iscale);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int g = 0; g < 16; g++) {
    __m256i q[2];
    for (int h = 0; h < 2; h++) {
      const __m256 p = _mm256_mul_ps(is, _mm256_loadu_ps(x + 16 * g + 8 * h));
      const __m256i ord = _mm256_castps_si256(_mm256_cmp_ps(p, p, _CMP_ORD_Q));
      q[h] = _mm256_and_si256(_mm256_cvtps_epi32(p), ord);
      q[h] = _mm256_min_epi32(_mm256_max_epi32(q[h], lo), hi);
    }
    // int32 -> int16 -> int8 (values fit, so the saturating packs are exact); packs work per 128-bit lane.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
    const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)(y->qs + 16 * g), b);
    y->bsums[g] = (int16_t)aglm_hsum_epi32(_mm256_add_epi32(q[0], q[1]));
  }
  y->d = 1 / iscale;
}

} // namespace

namespace aglm_avx2 {

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

} // namespace aglm_avx2
