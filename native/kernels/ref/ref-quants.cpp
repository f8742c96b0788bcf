// Reference quantization of the llama.cpp types beyond Q8_0/Q4_0: Q4_1, Q5_0, Q5_1, the K-quants Q4_K, Q5_K, Q6_K,
// and the activation types Q8_1 and Q8_K; their dequantization; quantize_row_act for every activation type.
//
// The quantizers follow the rules of llama.cpp's reference quantizers (ggml-quants.c quantize_row_*_ref, which is
// what llama-quantize runs when no importance matrix is given), step for step and in the same float operation order,
// so a file written here holds the same bytes llama.cpp would write (checked against libggml-base's
// ggml_quantize_chunk during development; the kernel tests check the properties that follow from the rules).
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

namespace {

// Round to nearest, ties to even (what llama.cpp's nearest_int computes for |v| < 2^22): adding 1.5 * 2^23 moves v
// into [2^23, 2^24), where floats are the integers, so the addition itself rounds; subtracting it back is exact.
// NaN gives 0 and the result saturates at +-2^22 instead of being undefined.
inline int aglm_round_even(float v) {
  if (!(v == v)) return 0;
  if (v >= 4194304.0f) return 4194304;
  if (v <= -4194304.0f) return -4194304;
  return (int)((v + 12582912.0f) - 12582912.0f);
}

inline int aglm_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// (int)v for v >= 0 clamped to [0, hi]; NaN and negatives give 0 (the C casts llama.cpp uses are undefined there).
inline int aglm_trunc_clamp(float v, int hi) {
  if (!(v > 0.0f)) return 0;
  return v >= (float)hi ? hi : (int)v;
}

inline float aglm_h2f(aglm_fp16_t h) { return aglm_fp16_to_fp32(h); }

// ---- Q4_1 / Q5_0 / Q5_1 / Q8_1 (blocks of 32) --------------------------------------------------------------

// Q4_1 and Q5_1: the block's range [min, max] in 2^bits - 1 steps: d = (max - min) / (2^bits - 1), m = min,
// q = trunc((x - min) / d + 0.5) (Q4_1 clamps to 15; Q5_1 cannot exceed 31 for finite input).
template <int BITS>
void aglm_minmax_block(const float *x, aglm_fp16_t *d_out, aglm_fp16_t *m_out, uint8_t *q) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int j = 0; j < 32; j++) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  const int top = (1 << BITS) - 1;
  const float d = (hi - lo) / (float)top;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_out = aglm_fp32_to_fp16(d);
  *m_out = aglm_fp32_to_fp16(lo);
  for (int j = 0; j < 32; j++) q[j] = (uint8_t)aglm_trunc_clamp((x[j] - lo) * id + 0.5f, top);
}

// Nibbles: value j in the low half of byte j, value j+16 in the high half; bit 4 of value j goes to bit j of qh.
void aglm_pack_nibbles32(const uint8_t *q, uint8_t *qs, uint8_t *qh) {
  uint32_t h = 0;
  for (int j = 0; j < 16; j++) {
    qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    h |= (uint32_t)((q[j] >> 4) & 1) << j;
    h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
  }
  if (qh) memcpy(qh, &h, 4);
}

void aglm_unpack_nibbles32(const uint8_t *qs, const uint8_t *qh, int *q) {
  uint32_t h = 0;
  if (qh) memcpy(&h, qh, 4);
  for (int j = 0; j < 16; j++) {
    q[j] = (qs[j] & 15) | (int)((h >> j) & 1) << 4;
    q[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
  }
}

void aglm_q4_1_block(const float *x, aglm_block_q4_1 *y) {
  uint8_t q[32];
  aglm_minmax_block<4>(x, &y->d, &y->m, q);
  aglm_pack_nibbles32(q, y->qs, nullptr);
}

void aglm_q5_1_block(const float *x, aglm_block_q5_1 *y) {
  uint8_t q[32];
  aglm_minmax_block<5>(x, &y->d, &y->m, q);
  aglm_pack_nibbles32(q, y->qs, y->qh);
}

// Q5_0: like Q4_0 with 32 levels: d = max / -16 (max = the value of largest magnitude), q = min(31, trunc(x/d + 16.5)).
void aglm_q5_0_block(const float *x, aglm_block_q5_0 *y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; j++) {
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  }
  const float d = max / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = aglm_fp32_to_fp16(d);
  uint8_t q[32];
  for (int j = 0; j < 32; j++) q[j] = (uint8_t)aglm_trunc_clamp(x[j] * id + 16.5f, 31);
  aglm_pack_nibbles32(q, y->qs, y->qh);
}

// roundf (ties away from zero) clamped to [-127, 127], NaN -> 0: the Q8_0 rule, shared by Q8_1.
inline int8_t aglm_q8_round(float v) {
  const float r = roundf(v);
  if (r != r) return 0;
  return r > 127.0f ? 127 : r < -127.0f ? -127 : (int8_t)r;
}

// Q8_1: Q8_0's d = amax/127 and q = round(x/d), plus s = d * sum(q) (d before its fp16 rounding).
void aglm_q8_1_block(const float *x, aglm_block_q8_1 *y) {
  float amax = 0.0f;
  for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = aglm_fp32_to_fp16(d);
  int sum = 0;
  for (int j = 0; j < 32; j++) {
    y->qs[j] = aglm_q8_round(x[j] * id);
    sum += y->qs[j];
  }
  y->s = aglm_fp32_to_fp16((float)sum * d);
}

// ---- K-quant scale fitting ------------------------------------------------------------------------------------

// Asymmetric fit of n values to x ~ scale * L + min, L in [0, nmax], min <= 0, weighted by w (llama.cpp's
// make_qkx2_quants): start from the grid over [min(x, 0), max(x)], then try nstep + 1 grids of
// nmax + rmin + rdelta * is steps over that range; for each, solve the weighted least-squares (scale, min) of its
// levels (min forced to 0 if it comes out positive) and keep it when its weighted squared error is the lowest so far.
// Returns the scale; *neg_min = -min.
float aglm_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, uint8_t *Laux,
                         float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    for (int i = 0; i < n; i++) L[i] = 0;
    *neg_min = -lo;
    return 0.0f;
  }
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; i++) {
    const int l = aglm_clampi(aglm_round_even(iscale * (x[i] - lo)), 0, nmax);
    L[i] = (uint8_t)l;
    const float diff = scale * l + lo - x[i];
    best += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      const int l = aglm_clampi(aglm_round_even(iscale * (x[i] - lo)), 0, nmax);
      Laux[i] = (uint8_t)l;
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; i++) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        err += w[i] * (diff * diff);
      }
      if (err < best) {
        for (int i = 0; i < n; i++) L[i] = Laux[i];
        best = err;
        scale = this_scale;
        lo = this_min;
      }
    }
  }
  *neg_min = -lo;
  return scale;
}

// Symmetric fit of n values to x ~ scale * (L - nmax), L - nmax in [-nmax, nmax - 1], weights x^2 (llama.cpp's
// make_qx_quants with rmse_type 1): the grid through the value of largest magnitude, then 18 grids of
// nmax + 0.1 * is steps (is = -9..9, not 0), keeping the one whose least-squares scale explains most of x.
float aglm_fit_scale_sym(int n, int nmax, const float *x, uint8_t *L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; i++) L[i] = 0;
    return 0.0f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = aglm_clampi(aglm_round_even(iscale * x[i]), -nmax, nmax - 1);
    L[i] = (uint8_t)(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; i++) {
      const int l = aglm_clampi(aglm_round_even(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; i++) L[i] = (uint8_t)(nmax + aglm_clampi(aglm_round_even(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// 6-bit scales and mins of Q4_K/Q5_K: 8 + 8 values in 12 bytes (see aglm_block_q4_K).
void aglm_k4_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s) {
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = (uint8_t)((ls[j] & 15) | (lm[j] & 15) << 4);
      s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
      s[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
  }
}

// Q4_K (NMAX 15) and Q5_K (NMAX 31): per sub-block of 32, weights sqrt(mean x^2) + |x| and the asymmetric fit
// (Q4_K: rmin -1, rdelta 0.1, 21 grids; Q5_K: -0.5, 0.1, 16); the 8 scales and mins become 6-bit multiples of
// d = max scale / 63 and dmin = max min / 63; the values are then re-rounded against those stored scales.
template <int NMAX>
void aglm_k45_levels(const float *x, aglm_fp16_t *d_out, aglm_fp16_t *dmin_out, uint8_t *scales, uint8_t *L) {
  const float rmin = NMAX == 15 ? -1.0f : -0.5f;
  const int nstep = NMAX == 15 ? 20 : 15;
  float sc[8], mn[8], w[32];
  uint8_t Laux[32];
  float max_sc = 0, max_mn = 0;
  for (int j = 0; j < 8; j++) {
    const float *xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
    const float av = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
    sc[j] = aglm_fit_scale_min(32, NMAX, xs, w, L + 32 * j, &mn[j], Laux, rmin, 0.1f, nstep);
    if (sc[j] > max_sc) max_sc = sc[j];
    if (mn[j] > max_mn) max_mn = mn[j];
  }
  const float inv_sc = max_sc > 0 ? 63.0f / max_sc : 0.0f;
  const float inv_mn = max_mn > 0 ? 63.0f / max_mn : 0.0f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; j++) {
    // As llama.cpp: the rounded value is stored in a byte, then capped at 63.
    const uint8_t a = (uint8_t)aglm_round_even(inv_sc * sc[j]), b = (uint8_t)aglm_round_even(inv_mn * mn[j]);
    ls[j] = a < 63 ? a : 63;
    lm[j] = b < 63 ? b : 63;
  }
  memset(scales, 0, 12);
  aglm_k4_pack_scales(ls, lm, scales);
  *d_out = aglm_fp32_to_fp16(max_sc / 63.0f);
  *dmin_out = aglm_fp32_to_fp16(max_mn / 63.0f);
  const float dd = aglm_h2f(*d_out), dm = aglm_h2f(*dmin_out);
  for (int j = 0; j < 8; j++) {
    int s, m;
    aglm_ref::k4_scale_min(scales, j, &s, &m);
    const float d = dd * s;
    if (!(d != 0.0f)) continue;
    const float off = dm * m;
    for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)aglm_clampi(aglm_round_even((x[32 * j + i] + off) / d), 0, NMAX);
  }
}

void aglm_q4_K_block(const float *x, aglm_block_q4_K *y) {
  uint8_t L[256];
  aglm_k45_levels<15>(x, &y->d, &y->dmin, y->scales, L);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
}

void aglm_q5_K_block(const float *x, aglm_block_q5_K *y) {
  uint8_t L[256];
  aglm_k45_levels<31>(x, &y->d, &y->dmin, y->scales, L);
  memset(y->qh, 0, 32);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      const int a = L[64 * c + l], b = L[64 * c + 32 + l];
      y->qs[32 * c + l] = (uint8_t)((a & 15) | (b & 15) << 4);
      y->qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (b >> 4) << (2 * c + 1));
    }
}

// Q6_K: a symmetric fit per group of 16 (32 levels either side), the 16 group scales as int8 multiples of
// d = -(the group scale of largest magnitude) / 128, the values re-rounded against the stored scales.
void aglm_q6_K_block(const float *x, aglm_block_q6_K *y) {
  uint8_t L[256];
  float sc[16];
  float max_sc = 0, max_abs = 0;
  for (int g = 0; g < 16; g++) {
    sc[g] = aglm_fit_scale_sym(16, 32, x + 16 * g, L + 16 * g);
    if (fabsf(sc[g]) > max_abs) {
      max_abs = fabsf(sc[g]);
      max_sc = sc[g];
    }
  }
  if (max_abs < 1e-15f) { // all (near) zero
    memset(y, 0, sizeof *y);
    return;
  }
  const float iscale = -128.0f / max_sc;
  y->d = aglm_fp32_to_fp16(1 / iscale);
  for (int g = 0; g < 16; g++) {
    const int s = aglm_round_even(iscale * sc[g]);
    y->scales[g] = (int8_t)(s < 127 ? s : 127);
  }
  const float dd = aglm_h2f(y->d);
  for (int g = 0; g < 16; g++) {
    const float d = dd * y->scales[g];
    if (!(d != 0.0f)) continue;
    for (int i = 0; i < 16; i++) L[16 * g + i] = (uint8_t)(aglm_clampi(aglm_round_even(x[16 * g + i] / d), -32, 31) + 32);
  }
  for (int h = 0; h < 2; h++) {
    const uint8_t *Lh = L + 128 * h;
    uint8_t *ql = y->ql + 64 * h, *qh = y->qh + 32 * h;
    for (int l = 0; l < 32; l++) {
      ql[l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
      ql[l + 32] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
      qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
    }
  }
}

// Q8_K: d = max / -127 where max is the value of largest magnitude (so q is in [-127, 127]), q = round-half-even
// of x / d, plus the sums of each 16 q.
void aglm_q8_K_block(const float *x, aglm_block_q8_K *y) {
  float max = 0, amax = 0;
  for (int j = 0; j < 256; j++) {
    const float ax = fabsf(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (!(amax != 0.0f)) {
    memset(y, 0, sizeof *y);
    return;
  }
  const float iscale = -127.0f / max;
  for (int j = 0; j < 256; j++) y->qs[j] = (int8_t)aglm_clampi(aglm_round_even(iscale * x[j]), -127, 127);
  for (int g = 0; g < 16; g++) {
    int sum = 0;
    for (int i = 0; i < 16; i++) sum += y->qs[16 * g + i];
    y->bsums[g] = (int16_t)sum;
  }
  y->d = 1 / iscale;
}

template <class B, void (*F)(const float *, B *), int QK>
void aglm_rows(const float *x, void *y, int64_t k) {
  B *b = (B *)y;
  for (int64_t i = 0; i < k / QK; i++) F(x + i * QK, b + i);
}

} // namespace

namespace aglm_ref {

void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

void quantize_row_q4_1(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q4_1, aglm_q4_1_block, 32>(x, y, k); }
void quantize_row_q5_0(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q5_0, aglm_q5_0_block, 32>(x, y, k); }
void quantize_row_q5_1(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q5_1, aglm_q5_1_block, 32>(x, y, k); }
void quantize_row_q8_1(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q8_1, aglm_q8_1_block, 32>(x, y, k); }
void quantize_row_q4_K(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q4_K, aglm_q4_K_block, 256>(x, y, k); }
void quantize_row_q5_K(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q5_K, aglm_q5_K_block, 256>(x, y, k); }
void quantize_row_q6_K(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q6_K, aglm_q6_K_block, 256>(x, y, k); }
void quantize_row_q8_K(const float *x, void *y, int64_t k) { aglm_rows<aglm_block_q8_K, aglm_q8_K_block, 256>(x, y, k); }

void quantize_row_act(int act_type, const float *x, void *y, int64_t k) {
  switch (act_type) {
  case AGLM_TYPE_Q8_0: quantize_row_q8_0(x, y, k); break;
  case AGLM_TYPE_Q8_1: quantize_row_q8_1(x, y, k); break;
  case AGLM_TYPE_Q8_K: quantize_row_q8_K(x, y, k); break;
  default: break;
  }
}

// Whole blocks only (nb blocks); the caller zeroes a partial tail.
bool dequantize_blocks(int type, const void *src, float *dst, int64_t nb) {
  switch (type) {
  case AGLM_TYPE_Q4_1:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q4_1 *b = (const aglm_block_q4_1 *)src + i;
      const float d = aglm_h2f(b->d), m = aglm_h2f(b->m);
      int q[32];
      aglm_unpack_nibbles32(b->qs, nullptr, q);
      for (int j = 0; j < 32; j++) dst[32 * i + j] = q[j] * d + m;
    }
    return true;
  case AGLM_TYPE_Q5_0:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q5_0 *b = (const aglm_block_q5_0 *)src + i;
      const float d = aglm_h2f(b->d);
      int q[32];
      aglm_unpack_nibbles32(b->qs, b->qh, q);
      for (int j = 0; j < 32; j++) dst[32 * i + j] = (q[j] - 16) * d;
    }
    return true;
  case AGLM_TYPE_Q5_1:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q5_1 *b = (const aglm_block_q5_1 *)src + i;
      const float d = aglm_h2f(b->d), m = aglm_h2f(b->m);
      int q[32];
      aglm_unpack_nibbles32(b->qs, b->qh, q);
      for (int j = 0; j < 32; j++) dst[32 * i + j] = q[j] * d + m;
    }
    return true;
  case AGLM_TYPE_Q8_1:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q8_1 *b = (const aglm_block_q8_1 *)src + i;
      const float d = aglm_h2f(b->d);
      for (int j = 0; j < 32; j++) dst[32 * i + j] = b->qs[j] * d;
    }
    return true;
  case AGLM_TYPE_Q4_K:
  case AGLM_TYPE_Q5_K:
    for (int64_t i = 0; i < nb; i++) {
      const bool five = type == AGLM_TYPE_Q5_K;
      const aglm_block_q4_K *b4 = (const aglm_block_q4_K *)src + i;
      const aglm_block_q5_K *b5 = (const aglm_block_q5_K *)src + i;
      const uint8_t *scales = five ? b5->scales : b4->scales, *qs = five ? b5->qs : b4->qs;
      const float d = aglm_h2f(five ? b5->d : b4->d), dmin = aglm_h2f(five ? b5->dmin : b4->dmin);
      float *y = dst + 256 * i;
      for (int j = 0; j < 8; j++) {
        int sc, m;
        k4_scale_min(scales, j, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        const int c = j / 2, hi = j % 2;
        for (int l = 0; l < 32; l++) {
          int q = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
          if (five) q |= ((b5->qh[l] >> j) & 1) << 4;
          y[32 * j + l] = d1 * q - m1;
        }
      }
    }
    return true;
  case AGLM_TYPE_Q6_K:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q6_K *b = (const aglm_block_q6_K *)src + i;
      const float d = aglm_h2f(b->d);
      for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        float *y = dst + 256 * i + 128 * h;
        for (int l = 0; l < 32; l++) {
          const int q0 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
          const int q1 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
          const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
          const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
          const int8_t *sc = b->scales + 8 * h + l / 16;
          y[l] = d * sc[0] * q0;
          y[l + 32] = d * sc[2] * q1;
          y[l + 64] = d * sc[4] * q2;
          y[l + 96] = d * sc[6] * q3;
        }
      }
    }
    return true;
  case AGLM_TYPE_Q8_K:
    for (int64_t i = 0; i < nb; i++) {
      const aglm_block_q8_K *b = (const aglm_block_q8_K *)src + i;
      for (int j = 0; j < 256; j++) dst[256 * i + j] = b->qs[j] * b->d;
    }
    return true;
  default: return false;
  }
}

} // namespace aglm_ref
