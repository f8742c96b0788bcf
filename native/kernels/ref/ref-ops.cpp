// Reference element-wise and normalisation kernels: rms_norm, rope, attention, silu_mul, add, mul, layer_norm, gelu.
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

namespace {

// Rotate the pairs (x[i0], x[i1]) by the angle whose (cos, sin) is cs.
inline void aglm_pair_rotate(float *x, int64_t i0, int64_t i1, const float *cs) {
  const float x0 = x[i0], x1 = x[i1];
  x[i0] = x0 * cs[0] - x1 * cs[1];
  x[i1] = x0 * cs[1] + x1 * cs[0];
}

void aglm_head_rope(float *x, int64_t n_rot, const float *cos_sin, int mode) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; i++) {
    if (mode == 2) aglm_pair_rotate(x, i, i + half, cos_sin + 2 * i);
    else aglm_pair_rotate(x, 2 * i, 2 * i + 1, cos_sin + 2 * i);
  }
}

// In place: p[j] = exp(p[j] - max) / sum, the sum taken in double (as ggml does).
void aglm_softmax(float *p, int64_t n) {
  float max = -INFINITY;
  for (int64_t j = 0; j < n; j++) max = p[j] > max ? p[j] : max;
  double sum = 0.0;
  for (int64_t j = 0; j < n; j++) {
    p[j] = expf(p[j] - max);
    sum += (double)p[j];
  }
  const float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

} // namespace

namespace aglm_ref {

// Sum of squares in double (as ggml does), then y = (x * scale) * w.
void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
  const float mean = n > 0 ? (float)(sum / (double)n) : 0.0f;
  const float scale = 1.0f / sqrtf(mean + eps);
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

void rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cos_sin, int mode) {
  if (n_rot > head_dim) n_rot = head_dim;
  for (int64_t h = 0; h < n_heads; h++) aglm_head_rope(x + h * head_dim, n_rot, cos_sin, mode);
}

// One cached element of row `row`, column `col` of a K or V cache stored as F32 or F16.
static inline float kv_at(const aglm_attn_args *a, const float *base, int64_t row, int64_t col) {
  const int64_t i = row * a->kv_stride + col;
  return a->kv_type == AGLM_TYPE_F16 ? aglm_fp16_to_fp32(((const aglm_fp16_t *)(const void *)base)[i]) : base[i];
}

// The definition, one (token t, head h): scores_j = scale * q.k_j over the token's rows, softmax, out = sum_j p_j v_j
// (j ascending, float). n_kv[t] <= 0 writes zeros. scratch holds n_kv[t] floats.
void attention(const aglm_attn_args *a, int64_t t, int64_t h, float *scratch) {
  const int64_t hd = a->head_dim;
  const int64_t group = a->n_head_kv > 0 && a->n_head >= a->n_head_kv ? a->n_head / a->n_head_kv : 1;
  const int64_t kv_off = (h / group) * hd;
  const float *q = a->q + t * a->q_stride + h * hd;
  float *out = a->out + t * a->out_stride + h * hd;
  const int64_t n_kv = a->n_kv[t];
  for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
  if (n_kv <= 0) return;
  for (int64_t j = 0; j < n_kv; j++) {
    const int64_t row = aglm_attn_row(a, t, j);
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; d++) dot += q[d] * kv_at(a, a->k, row, kv_off + d);
    scratch[j] = dot * a->scale;
  }
  aglm_softmax(scratch, n_kv);
  for (int64_t j = 0; j < n_kv; j++) {
    const int64_t row = aglm_attn_row(a, t, j);
    for (int64_t d = 0; d < hd; d++) out[d] += scratch[j] * kv_at(a, a->v, row, kv_off + d);
  }
}

void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch) {
  const int64_t group = a->n_head_kv > 0 && a->n_head >= a->n_head_kv ? a->n_head / a->n_head_kv : 1;
  const int64_t n_kv = a->n_kv[t] > 0 ? a->n_kv[t] : 0;
  for (int64_t h = 0; h < group; h++) attention(a, t, g * group + h, scratch + h * n_kv);
}

void silu_mul(const float *gate, const float *up, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void add(const float *a, const float *b, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void mul(const float *a, const float *b, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

// Mean, then the variance of x - mean, both summed in double (as ggml_norm); y = ((x - mean) * scale) * w + b.
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps) {
  if (n <= 0) return;
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += (double)x[i];
  const float mean = (float)(sum / (double)n);
  double sum2 = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float d = x[i] - mean;
    sum2 += (double)(d * d);
  }
  const float scale = 1.0f / sqrtf((float)(sum2 / (double)n) + eps);
  for (int64_t i = 0; i < n; i++) {
    const float v = ((x[i] - mean) * scale) * w[i];
    y[i] = b ? v + b[i] : v;
  }
}

// 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) x (1 + 0.044715 x^2).
void gelu(const float *x, float *y, int64_t n) {
  const float c = 0.7978845608028654f; // sqrt(2/pi)
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float u = c * v * (1.0f + 0.044715f * v * v);
    y[i] = v / (1.0f + expf(-2.0f * u));
  }
}

void gelu_erf(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

} // namespace aglm_ref
