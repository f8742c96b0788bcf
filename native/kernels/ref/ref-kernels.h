// Declarations of the scalar reference kernels, shared by the ref table and by SIMD variants that reuse one (rope).
// Declarations only: the definitions are compiled without ISA flags, so any variant may call them on any CPU.
#pragma once

#include "kernels/kernels.h"

namespace aglm_ref {

int matmul_act_type(int w_type);
void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_q4_0(const float *x, void *y, int64_t k);
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void dequantize_row(int type, const void *src, float *dst, int64_t k);
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cos_sin, int mode);
void attention(const aglm_attn_args *a, int64_t t, int64_t h, float *scratch);
void silu_mul(const float *gate, const float *up, float *y, int64_t n);
void add(const float *a, const float *b, float *y, int64_t n);
void mul(const float *a, const float *b, float *y, int64_t n);

} // namespace aglm_ref
