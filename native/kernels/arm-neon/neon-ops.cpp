// NEON kernels other than matmul: quantize_row_q8_0, dequantize_row, rms_norm, attention_group, silu_mul,
// add, mul, layer_norm, gelu.
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kernels/arm-neon/neon-internal.h"
#include "kernels/arm-neon/neon-math.h"
#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"

namespace {

// q = roundf(x * id) as the reference computes it: FCVTAS rounds to nearest with ties away from zero (roundf) and
// turns NaN into 0; then clamped to [-127, 127] (only the infinities of tiny or infinite scales reach the clamp).
inline int32x4_t aglm_q8_lanes(float32x4_t x, float32x4_t id) {
  const int32x4_t q = vcvtaq_s32_f32(vmulq_f32(x, id));
  return vmaxq_s32(vminq_s32(q, vdupq_n_s32(127)), vdupq_n_s32(-127));
}

void aglm_q8_0_block_quantize(const float *x, aglm_block_q8_0 *y) {
  float32x4_t v[8], m = vdupq_n_f32(0.0f);
  AGLM_UNROLL
  for (int i = 0; i < 8; i++) {
    v[i] = vld1q_f32(x + 4 * i);
    const float32x4_t a = vabsq_f32(v[i]);
    m = vbslq_f32(vcgtq_f32(a, m), a, m); // like the reference's `a > amax`: a NaN lane keeps m
  }
  const float d = vmaxvq_f32(m) / 127.0f;
  const float idf = d != 0.0f ? 1.0f / d : 0.0f;
  const float32x4_t id = vdupq_n_f32(idf);
  y->d = aglm_fp32_to_fp16(d);
  int16x8_t h[4];
  AGLM_UNROLL
  for (int i = 0; i < 4; i++)
    h[i] = vcombine_s16(vmovn_s32(aglm_q8_lanes(v[2 * i], id)), vmovn_s32(aglm_q8_lanes(v[2 * i + 1], id)));
  vst1q_s8(y->qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
  vst1q_s8(y->qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
}

void aglm_f16_row_dequantize(const uint16_t *src, float *dst, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + i));
    vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < k; i++) dst[i] = aglm_fp16_to_fp32(src[i]);
}

void aglm_bf16_row_dequantize(const uint16_t *src, float *dst, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const uint16x8_t b = vld1q_u16(src + i);
    vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(b), 16)));
    vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(b, 16)));
  }
  for (; i < k; i++) dst[i] = aglm_bf16_to_fp32(src[i]);
}

// 16 signed bytes times d (one rounding each, like the reference's (float)q * d).
inline void aglm_i8x16_scale_store(int8x16_t q, float32x4_t d, float *dst) {
  const int16x8_t l = vmovl_s8(vget_low_s8(q)), h = vmovl_high_s8(q);
  vst1q_f32(dst + 0, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(l))), d));
  vst1q_f32(dst + 4, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(l)), d));
  vst1q_f32(dst + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), d));
  vst1q_f32(dst + 12, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(h)), d));
}

void aglm_q8_0_row_dequantize(const aglm_block_q8_0 *b, float *dst, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float32x4_t d = vdupq_n_f32(aglm_h_to_f32(&b[i].d));
    aglm_i8x16_scale_store(vld1q_s8(b[i].qs), d, dst + 32 * i);
    aglm_i8x16_scale_store(vld1q_s8(b[i].qs + 16), d, dst + 32 * i + 16);
  }
}

void aglm_q4_0_row_dequantize(const aglm_block_q4_0 *b, float *dst, int64_t nb) {
  const uint8x16_t low = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t i = 0; i < nb; i++) {
    const float32x4_t d = vdupq_n_f32(aglm_h_to_f32(&b[i].d));
    const uint8x16_t q = vld1q_u8(b[i].qs);
    aglm_i8x16_scale_store(vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, low)), eight), d, dst + 32 * i);
    aglm_i8x16_scale_store(vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight), d, dst + 32 * i + 16);
  }
}

// Sum of the squares (each rounded to float, as the reference does) in double.
double aglm_sumsq(const float *x, int64_t n) {
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float32x4_t sq = vmulq_f32(v, v);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(sq)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(sq));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; i++) sum += (double)(x[i] * x[i]);
  return sum;
}

// p[j] = exp(p[j] - max) / sum over j < n, the sum taken in double.
void aglm_softmax(float *p, int64_t n) {
  float32x4_t mv = vdupq_n_f32(-INFINITY);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) mv = vmaxq_f32(mv, vld1q_f32(p + j));
  float max = vmaxvq_f32(mv);
  for (; j < n; j++) max = p[j] > max ? p[j] : max;
  const float32x4_t maxv = vdupq_n_f32(max);
  float64x2_t s = vdupq_n_f64(0.0);
  for (j = 0; j + 4 <= n; j += 4) {
    const float32x4_t e = aglm_exp4(vsubq_f32(vld1q_f32(p + j), maxv));
    vst1q_f32(p + j, e);
    s = vaddq_f64(s, vaddq_f64(vcvt_f64_f32(vget_low_f32(e)), vcvt_high_f64_f32(e)));
  }
  double sum = vaddvq_f64(s);
  if (j < n) {
    float e[4];
    vst1q_f32(e, aglm_exp4(vsubq_f32(aglm_f32_part(p + j, n - j), maxv)));
    for (int64_t i = 0; j + i < n; i++) {
      p[j + i] = e[i];
      sum += (double)e[i];
    }
  }
  const float inv = (float)(1.0 / sum);
  for (j = 0; j + 4 <= n; j += 4) vst1q_f32(p + j, vmulq_n_f32(vld1q_f32(p + j), inv));
  for (; j < n; j++) p[j] *= inv;
}


// Elements [i, i + 4) of a cached row (F32 or F16), and [i, i + count) for count < 4 (the rest 0).
inline float32x4_t aglm_kv4(const void *base, int64_t i, bool f16) {
  if (f16) return aglm_h4_to_f32(vld1_u16((const uint16_t *)base + i));
  return vld1q_f32((const float *)base + i);
}
inline float32x4_t aglm_kv_part(const void *base, int64_t i, int64_t count, bool f16) {
  if (f16) return aglm_h4_to_f32(aglm_u16_part((const uint16_t *)base + i, count));
  return aglm_f32_part((const float *)base + i, count);
}

// Sum of x, or of (x - mean)^2 (each rounded to float, as the reference does), in double.
template <bool Centered>
double aglm_sum_d(const float *x, int64_t n, float mean) {
  const float32x4_t vm = vdupq_n_f32(mean);
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vld1q_f32(x + i);
    if (Centered) {
      v = vsubq_f32(v, vm);
      v = vmulq_f32(v, v);
    }
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(v)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(v));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; i++) {
    const float d = Centered ? x[i] - mean : x[i];
    sum += (double)(Centered ? d * d : d);
  }
  return sum;
}

} // namespace

namespace aglm_neon {

// y = ((x - mean) * scale) * w (+ b), mean and variance summed in double (as ref).
void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps) {
  if (n <= 0) return;
  const float mean = (float)(aglm_sum_d<false>(x, n, 0.0f) / (double)n);
  const float var = (float)(aglm_sum_d<true>(x, n, mean) / (double)n);
  const float scale = 1.0f / sqrtf(var + eps);
  const float32x4_t vm = vdupq_n_f32(mean);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vmulq_f32(vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), vm), scale), vld1q_f32(w + i));
    if (b) v = vaddq_f32(v, vld1q_f32(b + i));
    vst1q_f32(y + i, v);
  }
  for (; i < n; i++) {
    const float v = ((x[i] - mean) * scale) * w[i];
    y[i] = b ? v + b[i] : v;
  }
}

// gelu(x) = x / (1 + exp(-2u)), u = sqrt(2/pi) x (1 + 0.044715 x^2) (ggml's tanh form, as ref).
void gelu(const float *x, float *y, int64_t n) {
  const float32x4_t c = vdupq_n_f32(-2.0f * 0.7978845608028654f), a = vdupq_n_f32(0.044715f), one = vdupq_n_f32(1.0f);
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t w = n - i < 4 ? n - i : 4;
    const float32x4_t v = w == 4 ? vld1q_f32(x + i) : aglm_f32_part(x + i, w);
    const float32x4_t t = vaddq_f32(one, vmulq_f32(vmulq_f32(a, v), v));
    const float32x4_t e = aglm_exp4(vmulq_f32(vmulq_f32(c, v), t));
    const float32x4_t r = vdivq_f32(v, vaddq_f32(one, e));
    if (w == 4) vst1q_f32(y + i, r);
    else aglm_f32_part_store(y + i, r, w);
  }
}

// erf by Abramowitz and Stegun 7.1.26: sign(z) (1 - poly(t) exp(-z^2)), t = 1 / (1 + 0.3275911 |z|).
void gelu_erf(const float *x, float *y, int64_t n) {
  const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f), rs2 = vdupq_n_f32(0.70710678118654752f);
  const float32x4_t p = vdupq_n_f32(0.3275911f);
  const float32x4_t a1 = vdupq_n_f32(0.254829592f), a2 = vdupq_n_f32(-0.284496736f), a3 = vdupq_n_f32(1.421413741f);
  const float32x4_t a4 = vdupq_n_f32(-1.453152027f), a5 = vdupq_n_f32(1.061405429f);
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t w = n - i < 4 ? n - i : 4;
    const float32x4_t v = w == 4 ? vld1q_f32(x + i) : aglm_f32_part(x + i, w);
    const float32x4_t z = vmulq_f32(v, rs2);
    const float32x4_t az = vabsq_f32(z);
    const float32x4_t t = vdivq_f32(one, vfmaq_f32(one, p, az));
    float32x4_t poly = vfmaq_f32(a4, a5, t);
    poly = vfmaq_f32(a3, poly, t);
    poly = vfmaq_f32(a2, poly, t);
    poly = vfmaq_f32(a1, poly, t);
    poly = vmulq_f32(poly, t);
    const float32x4_t e = aglm_exp4(vnegq_f32(vmulq_f32(az, az)));
    const float32x4_t erf_abs = vfmsq_f32(one, poly, e);
    const uint32x4_t signbit = vandq_u32(vreinterpretq_u32_f32(z), vdupq_n_u32(0x80000000u));
    const float32x4_t erf = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(erf_abs), signbit));
    const float32x4_t r = vmulq_f32(vmulq_f32(half, v), vaddq_f32(one, erf));
    if (w == 4) vst1q_f32(y + i, r);
    else aglm_f32_part_store(y + i, r, w);
  }
}

// All query heads of KV head g for token t, K/V in F32 or F16: each key row is read once per group (and dotted with
// every head's query), each block of 16 value rows once per group (accumulated in registers per head and 4 dims).
void attention_group(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch) {
  const int64_t hd = a->head_dim;
  const int64_t group = a->n_head_kv > 0 && a->n_head >= a->n_head_kv ? a->n_head / a->n_head_kv : 1;
  const int64_t n = a->n_kv[t];
  const bool f16 = a->kv_type == AGLM_TYPE_F16;
  const int64_t kv_off = g * hd;
  const float *q0 = a->q + t * a->q_stride + g * group * hd;
  float *out0 = a->out + t * a->out_stride + g * group * hd;
  memset(out0, 0, (size_t)(group * hd) * sizeof(float));
  if (n <= 0) return;
  for (int64_t j = 0; j < n; j++) {
    const int64_t row = aglm_attn_row(a, t, j) * a->kv_stride + kv_off;
    for (int64_t h = 0; h < group; h++) {
      const float *q = q0 + h * hd;
      float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
      int64_t d = 0;
      for (; d + 8 <= hd; d += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(q + d), aglm_kv4(a->k, row + d, f16));
        acc1 = vfmaq_f32(acc1, vld1q_f32(q + d + 4), aglm_kv4(a->k, row + d + 4, f16));
      }
      if (d + 4 <= hd) acc0 = vfmaq_f32(acc0, vld1q_f32(q + d), aglm_kv4(a->k, row + d, f16)), d += 4;
      if (d < hd) acc1 = vfmaq_f32(acc1, aglm_f32_part(q + d, hd - d), aglm_kv_part(a->k, row + d, hd - d, f16));
      scratch[h * n + j] = vaddvq_f32(vaddq_f32(acc0, acc1)) * a->scale;
    }
  }
  for (int64_t h = 0; h < group; h++) aglm_softmax(scratch + h * n, n);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t count = n - j0 < 16 ? n - j0 : 16;
    for (int64_t h = 0; h < group; h++) {
      const float *p = scratch + h * n + j0;
      for (int64_t d = 0; d < hd; d += 4) {
        const int64_t w = hd - d < 4 ? hd - d : 4;
        float *o = out0 + h * hd + d;
        float32x4_t acc = w == 4 ? vld1q_f32(o) : aglm_f32_part(o, w);
        for (int64_t i = 0; i < count; i++) {
          const int64_t at = aglm_attn_row(a, t, j0 + i) * a->kv_stride + kv_off + d;
          acc = vfmaq_n_f32(acc, w == 4 ? aglm_kv4(a->v, at, f16) : aglm_kv_part(a->v, at, w, f16), p[i]);
        }
        if (w == 4) vst1q_f32(o, acc);
        else aglm_f32_part_store(o, acc, w);
      }
    }
  }
}

void quantize_row_q8_0(const float *x, void *y, int64_t k) {
  aglm_block_q8_0 *b = (aglm_block_q8_0 *)y;
  for (int64_t i = 0; i < k / AGLM_QK8_0; i++) aglm_q8_0_block_quantize(x + i * AGLM_QK8_0, b + i);
}

// Q8_0 here (bit-identical to the reference); Q8_1, Q8_K (the K-quant activations) by the reference.
void quantize_row_act(int act_type, const float *x, void *y, int64_t k) {
  if (act_type == AGLM_TYPE_Q8_0) quantize_row_q8_0(x, y, k);
  else aglm_ref::quantize_row_act(act_type, x, y, k);
}

// F32 and the types this table does not specialise (K-quants, ...) go to the reference.
void dequantize_row(int type, const void *src, float *dst, int64_t k) {
  switch (type) {
  case AGLM_TYPE_F16: aglm_f16_row_dequantize((const uint16_t *)src, dst, k); return;
  case AGLM_TYPE_BF16: aglm_bf16_row_dequantize((const uint16_t *)src, dst, k); return;
  case AGLM_TYPE_Q8_0: aglm_q8_0_row_dequantize((const aglm_block_q8_0 *)src, dst, k / 32); break;
  case AGLM_TYPE_Q4_0: aglm_q4_0_row_dequantize((const aglm_block_q4_0 *)src, dst, k / 32); break;
  default: aglm_ref::dequantize_row(type, src, dst, k); return;
  }
  for (int64_t i = k - k % 32; i < k; i++) dst[i] = 0.0f;
}

void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
  const float mean = n > 0 ? (float)(aglm_sumsq(x, n) / (double)n) : 0.0f;
  const float scale = 1.0f / sqrtf(mean + eps);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
  for (; i < n; i++) y[i] = (x[i] * scale) * w[i];
}


void silu_mul(const float *gate, const float *up, float *y, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, aglm_exp4(vnegq_f32(g))));
    vst1q_f32(y + i, vmulq_f32(s, vld1q_f32(up + i)));
  }
  if (i < n) {
    const float32x4_t g = aglm_f32_part(gate + i, n - i);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, aglm_exp4(vnegq_f32(g))));
    aglm_f32_part_store(y + i, vmulq_f32(s, aglm_f32_part(up + i, n - i)), n - i);
  }
}

void add(const float *a, const float *b, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
  for (; i < n; i++) y[i] = a[i] + b[i];
}

void mul(const float *a, const float *b, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
  for (; i < n; i++) y[i] = a[i] * b[i];
}

} // namespace aglm_neon
