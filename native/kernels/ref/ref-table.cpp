// The scalar reference kernel table `aglm_kernels_ref`: the specification every SIMD variant is tested against.
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

extern "C" const aglm_kernels aglm_kernels_ref = {
    "ref",
    aglm_ref::matmul_act_type,
    aglm_ref::quantize_row_q8_0,
    aglm_ref::matmul,
    aglm_ref::dequantize_row,
    aglm_ref::rms_norm,
    aglm_ref::rope,
    aglm_ref::silu_mul,
    aglm_ref::add,
    aglm_ref::mul,
    nullptr, // repack_size: matmul reads the GGUF layout
    nullptr, // repack
    aglm_ref::quantize_row_act,
    aglm_ref::attention_group,
    aglm_ref::layer_norm,
    aglm_ref::gelu,
    nullptr, // unpack_row: no repacked weights
    aglm_ref::gelu_erf,
};
