// The AVX-512 (F/BW/VL/DQ + FMA + F16C) kernel table `aglm_kernels_avx512`; VNNI is used inside matmul when present,
// and then Q8_0/Q4_0 weights are repacked into 16-row panels at load (avx512-panel.h).
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-panel.h"

extern "C" const aglm_kernels aglm_kernels_avx512 = {
    "avx512",
    aglm_ref::matmul_act_type,
    aglm_avx512::quantize_row_q8_0,
    aglm_avx512::matmul,
    aglm_avx512::dequantize_row,
    aglm_avx512::rms_norm,
    aglm_ref::rope,
    aglm_avx512::silu_mul,
    aglm_avx512::add,
    aglm_avx512::mul,
    aglm_avx512::repack_size, // Q8_0/Q4_0 in 16-row panels where VNNI runs
    aglm_avx512::repack_q,
    aglm_avx512::quantize_row_act,
    aglm_avx512::attention_group,
    aglm_avx512::layer_norm,
    aglm_avx512::gelu,
    aglm_avx512::unpack_row_q,
    aglm_avx512::gelu_erf,
};
