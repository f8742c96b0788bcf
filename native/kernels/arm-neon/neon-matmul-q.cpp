// NEON Q8_0/Q4_0 matmul for any AArch64 CPU: int8 products widened by vmull/vmlal to int16, pairs summed into int32
// by vpadal. Each int16 lane holds two products, |w x| <= 128 * 127, so it cannot overflow: activations never hold
// -128 (quantize_row_q8_0 clamps to [-127, 127]).
#include <arm_neon.h>

#include "kernels/arm-neon/neon-internal.h"

namespace {

inline int32x4_t aglm_q_dot(int32x4_t acc, int8x16_t w, int8x16_t x) {
  const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), w, x);
  return vpadalq_s16(acc, p);
}

} // namespace

#include "kernels/arm-neon/neon-matmul-q.h"

namespace aglm_neon {

void matmul_q(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_q_matmul(a, r0, r1); }

} // namespace aglm_neon
