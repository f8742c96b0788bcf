// Entry points shared by the avx512 translation units (compiled with -mavx512f/bw/vl/dq); declarations only.
#pragma once

#include "kernels/kernels.h"

namespace aglm_avx512 {

void quantize_row_q8_0(const float *x, void *y, int64_t k);
// Q8_0, Q8_1, Q8_K activation rows (avx512-act.cpp), bit-identical to aglm_ref::quantize_row_act.
void quantize_row_act(int act_type, const float *x, void *y, int64_t k);
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// Q8_0/Q4_0 in 16-row panels where AVX512_VNNI is present (avx512-panel.h), 0 (the GGUF layout) otherwise.
size_t repack_size(int w_type, int64_t rows, int64_t k);
void dequantize_row(int type, const void *src, float *dst, int64_t k);
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
// All query heads of KV head g for token t, K/V in F32 or F16 (avx512-attention.cpp).
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch);
void silu_mul(const float *gate, const float *up, float *y, int64_t n);
void add(const float *a, const float *b, float *y, int64_t n);
void mul(const float *a, const float *b, float *y, int64_t n);
// avx512-norm.cpp
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps);
void gelu(const float *x, float *y, int64_t n);
void gelu_erf(const float *x, float *y, int64_t n);

// Q8_0/Q4_0 weights: matmul_q runs on any AVX-512BW CPU; matmul_q_vnni (its own object, built with -mavx512vnni)
// only after matmul() has seen AVX512_VNNI in cpuid.
void matmul_q(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void matmul_q_vnni(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K weights, split the same way: avx512-matmul-ext.cpp (AVX512BW) and
// avx512-matmul-ext-vnni.cpp (VPDPBUSD/VPDPWSSD, only after the cpuid check).
void matmul_ext(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void matmul_ext_vnni(const aglm_matmul_args *a, int64_t r0, int64_t r1);

} // namespace aglm_avx512
