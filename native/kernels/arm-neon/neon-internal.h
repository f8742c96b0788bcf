// Entry points shared by the neon translation units; declarations only. Every neon object is built for the AArch64
// baseline (Advanced SIMD is part of armv8-a) except neon-matmul-q-dotprod.cpp, built for armv8.2-a+dotprod and
// called only after the HWCAP check in neon-matmul.cpp.
#pragma once

#include "kernels/kernels.h"

namespace aglm_neon {

void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_act(int act_type, const float *x, void *y, int64_t k);
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void dequantize_row(int type, const void *src, float *dst, int64_t k);
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
// All query heads of KV head g for token t, K/V in F32 or F16 (neon-ops.cpp).
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch);
void silu_mul(const float *gate, const float *up, float *y, int64_t n);
// BERT-style encoders (neon-ops.cpp).
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps);
void gelu(const float *x, float *y, int64_t n);
void gelu_erf(const float *x, float *y, int64_t n);
void add(const float *a, const float *b, float *y, int64_t n);
void mul(const float *a, const float *b, float *y, int64_t n);

// Q8_0/Q4_0 weights against Q8_0 activations: matmul_q runs on any AArch64 CPU (vmull/vmlal/vpadal);
// matmul_q_dotprod (its own object, built with +dotprod) only after matmul() has seen HWCAP_ASIMDDP.
void matmul_q(const aglm_matmul_args *a, int64_t r0, int64_t r1);
void matmul_q_dotprod(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// Whether matmul() uses matmul_q_dotprod on this CPU (probed once).
bool dotprod_present();

} // namespace aglm_neon
