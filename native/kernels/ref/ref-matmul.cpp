// Reference matmul: float weights (F32/F16/BF16) against F32 activations, Q8_0/Q4_0 weights against Q8_0 activations.
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

namespace {

float aglm_weight_at(int type, const void *row, int64_t i) {
  switch (type) {
  case AGLM_TYPE_F16: return aglm_fp16_to_fp32(((const aglm_fp16_t *)row)[i]);
  case AGLM_TYPE_BF16: return aglm_bf16_to_fp32(((const aglm_bf16_t *)row)[i]);
  default: return ((const float *)row)[i];
  }
}

// Sequential float sum of w[i] * x[i], weights converted to float first.
float aglm_dot_float(int type, const void *w, const float *x, int64_t k) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; i++) sum += aglm_weight_at(type, w, i) * x[i];
  return sum;
}

int aglm_q4_0_block_isum(const aglm_block_q4_0 *w, const aglm_block_q8_0 *x) {
  int sum = 0;
  for (int j = 0; j < AGLM_QK4_0 / 2; j++) {
    sum += ((w->qs[j] & 0x0f) - 8) * x->qs[j];
    sum += ((w->qs[j] >> 4) - 8) * x->qs[j + 16];
  }
  return sum;
}

int aglm_q8_0_block_isum(const aglm_block_q8_0 *w, const aglm_block_q8_0 *x) {
  int sum = 0;
  for (int j = 0; j < AGLM_QK8_0; j++) sum += w->qs[j] * x->qs[j];
  return sum;
}

// Per block: integer dot times (d_w * d_x), summed in float in block order (whole blocks only).
template <typename Block, int (*isum)(const Block *, const aglm_block_q8_0 *)>
float aglm_dot_quant(const void *w, const void *x, int64_t k) {
  const Block *bw = (const Block *)w;
  const aglm_block_q8_0 *bx = (const aglm_block_q8_0 *)x;
  float sum = 0.0f;
  for (int64_t i = 0; i < k / 32; i++)
    sum += (float)isum(bw + i, bx + i) * (aglm_fp16_to_fp32(bw[i].d) * aglm_fp16_to_fp32(bx[i].d));
  return sum;
}

float aglm_dot_row(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w = (const char *)a->w + r * (int64_t)a->w_row_bytes;
  const char *x = (const char *)a->x + t * (int64_t)a->x_row_bytes;
  switch (a->w_type) {
  case AGLM_TYPE_Q8_0: return aglm_dot_quant<aglm_block_q8_0, aglm_q8_0_block_isum>(w, x, a->k);
  case AGLM_TYPE_Q4_0: return aglm_dot_quant<aglm_block_q4_0, aglm_q4_0_block_isum>(w, x, a->k);
  default: return aglm_dot_float(a->w_type, w, (const float *)x, a->k);
  }
}

} // namespace

namespace aglm_ref {

int matmul_act_type(int w_type) {
  switch (w_type) {
  case AGLM_TYPE_F32:
  case AGLM_TYPE_F16:
  case AGLM_TYPE_BF16: return AGLM_TYPE_F32;
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0: return AGLM_TYPE_Q8_0;
  default: return -1;
  }
}

// Unsupported weight types leave y untouched (callers check matmul_act_type first).
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (matmul_act_type(a->w_type) < 0) return;
  for (int64_t t = 0; t < a->n; t++)
    for (int64_t r = r0; r < r1; r++) a->y[t * a->y_stride + r] = aglm_dot_row(a, r, t);
}

} // namespace aglm_ref
