// Reference matmul: float weights (F32/F16/BF16) against F32 activations; the quantized types against llama.cpp's
// activation type for them: Q8_0/Q4_0/Q5_0 x Q8_0, Q4_1/Q5_1 x Q8_1, Q4_K/Q5_K/Q6_K x Q8_K.
//
// Every quantized dot is an exact integer sum per block (per super-block for the K-quants, its sub-block scales
// applied as integers), then scaled and summed over blocks in float, in block order. These integer sums are the
// specification the SIMD variants compute bit for bit; only the float part may differ in order.
#include <string.h>

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

int aglm_q5_0_block_isum(const aglm_block_q5_0 *w, const aglm_block_q8_0 *x) {
  uint32_t qh;
  memcpy(&qh, w->qh, 4);
  int sum = 0;
  for (int j = 0; j < 16; j++) {
    sum += ((w->qs[j] & 0x0f) + (int)((qh >> j) & 1) * 16 - 16) * x->qs[j];
    sum += ((w->qs[j] >> 4) + (int)((qh >> (j + 16)) & 1) * 16 - 16) * x->qs[j + 16];
  }
  return sum;
}

// Q4_1/Q5_1 x Q8_1: sum_b (d_w d_x) * sum q x + m_w * s_x, with s_x = d_x * sum x (llama.cpp's formula).
template <bool Five, typename Block>
float aglm_dot_q_1(const void *w, const void *x, int64_t k) {
  const Block *bw = (const Block *)w;
  const aglm_block_q8_1 *bx = (const aglm_block_q8_1 *)x;
  float sum = 0.0f;
  for (int64_t i = 0; i < k / 32; i++) {
    uint32_t qh = 0;
    if constexpr (Five) memcpy(&qh, ((const aglm_block_q5_1 *)bw)[i].qh, 4);
    int isum = 0;
    for (int j = 0; j < 16; j++) {
      isum += ((bw[i].qs[j] & 0x0f) + (int)((qh >> j) & 1) * 16) * bx[i].qs[j];
      isum += ((bw[i].qs[j] >> 4) + (int)((qh >> (j + 16)) & 1) * 16) * bx[i].qs[j + 16];
    }
    const float dd = aglm_fp16_to_fp32(bw[i].d) * aglm_fp16_to_fp32(bx[i].d);
    sum += dd * (float)isum + aglm_fp16_to_fp32(bw[i].m) * aglm_fp16_to_fp32(bx[i].s);
  }
  return sum;
}

// Q4_K/Q5_K x Q8_K per super-block: S1 = sum_j sc_j sum_{i in j} q_i x_i and S2 = sum_j m_j sum_{i in j} x_i
// (integers), then d_w d_x S1 - dmin_w d_x S2.
template <bool Five>
float aglm_dot_k45(const void *w, const void *x, int64_t k) {
  const aglm_block_q8_K *bx = (const aglm_block_q8_K *)x;
  float sum = 0.0f;
  for (int64_t i = 0; i < k / 256; i++) {
    const aglm_block_q4_K *b4 = (const aglm_block_q4_K *)w + i;
    const aglm_block_q5_K *b5 = (const aglm_block_q5_K *)w + i;
    const uint8_t *scales = Five ? b5->scales : b4->scales, *qs = Five ? b5->qs : b4->qs;
    int s1 = 0, s2 = 0;
    for (int j = 0; j < 8; j++) {
      int sc, m;
      aglm_ref::k4_scale_min(scales, j, &sc, &m);
      int isum = 0, xsum = 0;
      for (int l = 0; l < 32; l++) {
        int q = j % 2 ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 15;
        if (Five) q |= ((b5->qh[l] >> j) & 1) << 4;
        isum += q * bx[i].qs[32 * j + l];
        xsum += bx[i].qs[32 * j + l];
      }
      s1 += sc * isum;
      s2 += m * xsum;
    }
    const float d = aglm_fp16_to_fp32(Five ? b5->d : b4->d), dmin = aglm_fp16_to_fp32(Five ? b5->dmin : b4->dmin);
    sum += (d * bx[i].d) * (float)s1 - (dmin * bx[i].d) * (float)s2;
  }
  return sum;
}

// Q6_K x Q8_K per super-block: S = sum_g scale_g sum_{i in g} (q_i - 32) x_i (an integer), then d_w d_x S.
float aglm_dot_q6_K(const void *w, const void *x, int64_t k) {
  const aglm_block_q6_K *bw = (const aglm_block_q6_K *)w;
  const aglm_block_q8_K *bx = (const aglm_block_q8_K *)x;
  float sum = 0.0f;
  for (int64_t i = 0; i < k / 256; i++) {
    int q[256];
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = bw[i].ql + 64 * h, *qh = bw[i].qh + 32 * h;
      for (int l = 0; l < 32; l++) {
        q[128 * h + l] = (ql[l] & 15) | ((qh[l] >> 0) & 3) << 4;
        q[128 * h + l + 32] = (ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4;
        q[128 * h + l + 64] = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
        q[128 * h + l + 96] = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
      }
    }
    int s = 0;
    for (int g = 0; g < 16; g++) {
      int isum = 0;
      for (int l = 0; l < 16; l++) isum += (q[16 * g + l] - 32) * bx[i].qs[16 * g + l];
      s += bw[i].scales[g] * isum;
    }
    sum += (aglm_fp16_to_fp32(bw[i].d) * bx[i].d) * (float)s;
  }
  return sum;
}

} // namespace

namespace aglm_ref {

float dot_row(int w_type, const void *w, const void *x, int64_t k) {
  switch (w_type) {
  case AGLM_TYPE_Q8_0: return aglm_dot_quant<aglm_block_q8_0, aglm_q8_0_block_isum>(w, x, k);
  case AGLM_TYPE_Q4_0: return aglm_dot_quant<aglm_block_q4_0, aglm_q4_0_block_isum>(w, x, k);
  case AGLM_TYPE_Q5_0: return aglm_dot_quant<aglm_block_q5_0, aglm_q5_0_block_isum>(w, x, k);
  case AGLM_TYPE_Q4_1: return aglm_dot_q_1<false, aglm_block_q4_1>(w, x, k);
  case AGLM_TYPE_Q5_1: return aglm_dot_q_1<true, aglm_block_q5_1>(w, x, k);
  case AGLM_TYPE_Q4_K: return aglm_dot_k45<false>(w, x, k);
  case AGLM_TYPE_Q5_K: return aglm_dot_k45<true>(w, x, k);
  case AGLM_TYPE_Q6_K: return aglm_dot_q6_K(w, x, k);
  default: return aglm_dot_float(w_type, w, (const float *)x, k);
  }
}

} // namespace aglm_ref

namespace {

float aglm_dot_row(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w = (const char *)a->w + r * (int64_t)a->w_row_bytes;
  const char *x = (const char *)a->x + t * (int64_t)a->x_row_bytes;
  return aglm_ref::dot_row(a->w_type, w, x, a->k);
}

} // namespace

namespace aglm_ref {

int matmul_act_type(int w_type) {
  switch (w_type) {
  case AGLM_TYPE_F32:
  case AGLM_TYPE_F16:
  case AGLM_TYPE_BF16: return AGLM_TYPE_F32;
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0:
  case AGLM_TYPE_Q5_0: return AGLM_TYPE_Q8_0;
  case AGLM_TYPE_Q4_1:
  case AGLM_TYPE_Q5_1: return AGLM_TYPE_Q8_1;
  case AGLM_TYPE_Q4_K:
  case AGLM_TYPE_Q5_K:
  case AGLM_TYPE_Q6_K: return AGLM_TYPE_Q8_K;
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
