// The NEON kernel table `aglm_kernels_neon` (AArch64 Advanced SIMD; Q8_0/Q4_0 matmul uses sdot when the CPU has the
// dotprod extension). rope and matmul_act_type reuse the scalar reference; weight types and activation types the
// table does not specialise (Q4_1, Q5_x, K-quants; Q8_1, Q8_K) go to the reference kernels (neon-matmul.cpp,
// neon-ops.cpp). No repacking: matmul reads the GGUF layout.
#include "kernels/arm-neon/neon-internal.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

extern "C" const aglm_kernels aglm_kernels_neon = {
    "neon",
    aglm_ref::matmul_act_type,
    aglm_neon::quantize_row_q8_0,
    aglm_neon::matmul,
    aglm_neon::dequantize_row,
    aglm_neon::rms_norm,
    aglm_ref::rope,
    aglm_neon::silu_mul,
    aglm_neon::add,
    aglm_neon::mul,
    nullptr, // repack_size: matmul reads the GGUF layout
    nullptr, // repack
    aglm_neon::quantize_row_act,
    aglm_neon::attention_group,
    aglm_neon::layer_norm,
    aglm_neon::gelu,
    nullptr, // unpack_row: no repacked weights
    aglm_neon::gelu_erf,
};
