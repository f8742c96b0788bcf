// Entry points shared by the avx2 translation units (all compiled with -mavx2 -mfma -mf16c); declarations only.
#pragma once

#include "kernels/kernels.h"

namespace aglm_avx2 {

void quantize_row_q8_0(const float *x, void *y, int64_t k);
// Q8_0, Q8_1, Q8_K activation rows (avx2-act.cpp), bit-identical to aglm_ref::quantize_row_act.
void quantize_row_act(int act_type, const float *x, void *y, int64_t k);
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K weights (avx2-matmul-ext.cpp); matmul() hands them over.
void matmul_ext(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void dequantize_row(int type, const void *src, float *dst, int64_t k);
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
// All query heads of KV head g for token t, K/V in F32 or F16 (avx2-ops.cpp).
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch);
void silu_mul(const float *gate, const float *up, float *y, int64_t n);
void add(const float *a, const float *b, float *y, int64_t n);
void mul(const float *a, const float *b, float *y, int64_t n);
// avx2-norm.cpp
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps);
void gelu(const float *x, float *y, int64_t n);
void gelu_erf(const float *x, float *y, int64_t n);

} // namespace aglm_avx2
