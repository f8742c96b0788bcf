// The AVX2 + FMA + F16C kernel table `aglm_kernels_avx2` (rope and matmul_act_type reuse the scalar reference).
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx2/avx2-internal.h"

extern "C" const aglm_kernels aglm_kernels_avx2 = {
    "avx2",
    aglm_ref::matmul_act_type,
    aglm_avx2::quantize_row_q8_0,
    aglm_avx2::matmul,
    aglm_avx2::dequantize_row,
    aglm_avx2::rms_norm,
    aglm_ref::rope,
    aglm_avx2::silu_mul,
    aglm_avx2::add,
    aglm_avx2::mul,
    nullptr, // repack_size: matmul reads the GGUF layout
    nullptr, // repack
    aglm_avx2::quantize_row_act,
    aglm_avx2::attention_group,
    aglm_avx2::layer_norm,
    aglm_avx2::gelu,
    nullptr, // unpack_row: no repacked weights
    aglm_avx2::gelu_erf,
};
