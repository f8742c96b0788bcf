// Declarations of the scalar reference kernels, shared by the ref table and by SIMD variants that reuse one (rope).
// Declarations only: the definitions are compiled without ISA flags, so any variant may call them on any CPU.
#pragma once

#include "kernels/kernels.h"

namespace aglm_ref {

int matmul_act_type(int w_type);
void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_q4_0(const float *x, void *y, int64_t k);
// The other llama.cpp types (ref-quants.cpp): llama.cpp's reference quantizers, rows of whole blocks.
void quantize_row_q4_1(const float *x, void *y, int64_t k);
void quantize_row_q5_0(const float *x, void *y, int64_t k);
void quantize_row_q5_1(const float *x, void *y, int64_t k);
void quantize_row_q8_1(const float *x, void *y, int64_t k);
void quantize_row_q4_K(const float *x, void *y, int64_t k);
void quantize_row_q5_K(const float *x, void *y, int64_t k);
void quantize_row_q6_K(const float *x, void *y, int64_t k);
void quantize_row_q8_K(const float *x, void *y, int64_t k);
// Activation quantization for matmul_act_type's Q8_0, Q8_1 and Q8_K (the table member quantize_row_act). Any variant's
// table may point at it (the NEON one does until it has its own).
void quantize_row_act(int act_type, const float *x, void *y, int64_t k);
// Dequantizes nb whole blocks of Q4_1, Q5_0, Q5_1, Q8_1, Q4_K, Q5_K, Q6_K or Q8_K; false for other types.
bool dequantize_blocks(int type, const void *src, float *dst, int64_t nb);
// Sub-block j's 6-bit scale and min of a Q4_K/Q5_K `scales` array.
void k4_scale_min(const uint8_t *scales, int j, int *sc, int *m);
// The reference dot product of one weight row of w_type with one activation row of matmul_act_type(w_type), k values.
float dot_row(int w_type, const void *w, const void *x, int64_t k);
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void dequantize_row(int type, const void *src, float *dst, int64_t k);
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cos_sin, int mode);
void attention(const aglm_attn_args *a, int64_t t, int64_t h, float *scratch);
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch);
void silu_mul(const float *gate, const float *up, float *y, int64_t n);
void add(const float *a, const float *b, float *y, int64_t n);
void mul(const float *a, const float *b, float *y, int64_t n);
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps);
void gelu(const float *x, float *y, int64_t n);
void gelu_erf(const float *x, float *y, int64_t n);

} // namespace aglm_ref
