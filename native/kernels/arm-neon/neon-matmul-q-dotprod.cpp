// NEON Q8_0/Q4_0 matmul with the dot product extension (sdot, vdotq_s32): built for armv8.2-a+dotprod and called
// only after neon-matmul.cpp has seen HWCAP_ASIMDDP (or FEAT_DotProd on macOS).
#include <arm_neon.h>

#include "kernels/arm-neon/neon-internal.h"

#if !defined(__ARM_FEATURE_DOTPROD) && !defined(_MSC_VER)
#error "neon-matmul-q-dotprod.cpp must be compiled with the dotprod extension (-march=armv8.2-a+dotprod)"
#endif

namespace {

inline int32x4_t aglm_q_dot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }

} // namespace

#include "kernels/arm-neon/neon-matmul-q.h"

namespace aglm_neon {

void matmul_q_dotprod(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_q_matmul(a, r0, r1); }

} // namespace aglm_neon
