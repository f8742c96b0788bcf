// The CUDA backend's arithmetic for everything but matmul, shared by the device kernels and the host tests: norms
// (per-thread partial sums, then the finishing formula), the activations, rope (the rotation and the angle tables as
// cpu-session.cpp computes them), and attention as online-softmax partials over splits of the KV cells
// (flash-decoding) with the combine that merges them.
#pragma once

#include "cuda-common.cuh"
#include "open-autoglm/backend.h"

// ---- norms: thread `lane` of `lanes` sums its strided elements; the block sums the partials (cuda-common.cuh) -----

AGLM_HD float aglm_cu_sumsq_partial(const float *x, int64_t n, int lane, int lanes) {
  float s = 0.0f;
  for (int64_t i = lane; i < n; i += lanes) s += x[i] * x[i];
  return s;
}
AGLM_HD float aglm_cu_sum_partial(const float *x, int64_t n, int lane, int lanes) {
  float s = 0.0f;
  for (int64_t i = lane; i < n; i += lanes) s += x[i];
  return s;
}
AGLM_HD float aglm_cu_centered_sumsq_partial(const float *x, float mean, int64_t n, int lane, int lanes) {
  float s = 0.0f;
  for (int64_t i = lane; i < n; i += lanes) {
    const float d = x[i] - mean;
    s += d * d;
  }
  return s;
}
// rms_norm: scale = 1 / sqrt(mean(x^2) + eps), y = (x * scale) * w (the reference's order; its sum is in double, the
// device's a float tree, hence the tests' tolerance).
AGLM_HD float aglm_cu_rms_scale(float sumsq, int64_t n, float eps) { return 1.0f / sqrtf((n > 0 ? sumsq / (float)n : 0.0f) + eps); }
AGLM_HD float aglm_cu_rms_apply(float x, float scale, float w) { return (x * scale) * w; }
// layer_norm: mean, then the variance of x - mean; y = ((x - mean) * scale) * w + b (b optional).
AGLM_HD float aglm_cu_mean(float sum, int64_t n) { return sum / (float)n; }
AGLM_HD float aglm_cu_ln_scale(float centered_sumsq, int64_t n, float eps) { return 1.0f / sqrtf(centered_sumsq / (float)n + eps); }
AGLM_HD float aglm_cu_ln_apply(float x, float mean, float scale, float w, const float *b, int64_t i) {
  const float v = ((x - mean) * scale) * w;
  return b ? v + b[i] : v;
}

// ---- element-wise -----------------------------------------------------------------------------------------------

AGLM_HD float aglm_cu_silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }
// ggml's tanh GELU as x sigmoid(2u), u = sqrt(2/pi) x (1 + 0.044715 x^2) (the reference's form).
AGLM_HD float aglm_cu_gelu(float v) {
  const float u = 0.7978845608028654f * v * (1.0f + 0.044715f * v * v);
  return v / (1.0f + expf(-2.0f * u));
}
AGLM_HD float aglm_cu_gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

// ---- rope -------------------------------------------------------------------------------------------------------

// Pair j of a head: mode 0 rotates (2j, 2j+1), the others (neox, and multi-section 8 and 24) (j, j + n_rot/2).
AGLM_HD void aglm_cu_rope_pair(int64_t j, int64_t n_rot, int mode, int64_t *i0, int64_t *i1) {
  if (mode == 0) *i0 = 2 * j, *i1 = 2 * j + 1;
  else *i0 = j, *i1 = j + n_rot / 2;
}
AGLM_HD void aglm_cu_rope_rotate(float *x, int64_t i0, int64_t i1, const float *cs) {
  const float x0 = x[i0], x1 = x[i1];
  x[i0] = x0 * cs[0] - x1 * cs[1];
  x[i1] = x0 * cs[1] + x1 * cs[0];
}

// YaRN's correction range (ggml's ggml_rope_yarn_corr_dims, in float as cpu-session.cpp).
AGLM_HD void aglm_cu_yarn_corr_dims(const aglm_hal_rope &c, float dims[2]) {
  const float pi = 3.14159265358979323846f;
  const float lb = 2 * logf(c.freq_base);
  const float fast = (float)c.n_rot * logf((float)c.n_ctx_orig / (c.beta_fast * 2 * pi)) / lb;
  const float slow = (float)c.n_rot * logf((float)c.n_ctx_orig / (c.beta_slow * 2 * pi)) / lb;
  const float lo = floorf(fast), hi = ceilf(slow);
  dims[0] = lo > 0.0f ? lo : 0.0f;
  dims[1] = hi < (float)(c.n_rot - 1) ? hi : (float)(c.n_rot - 1);
}

// (cos, sin) of pair j for one token, in double as cpu-session.cpp: `pos` its position, `planes` its 4 rope positions
// (multi-section modes; null: pos on planes 0-2, 0 on plane 3), `ff` the frequency factors (or null), `corr` from
// aglm_cu_yarn_corr_dims when ext_factor != 0. The backend computes these tables on the host per batch (n_tokens x
// n_rot/2 pairs, a few kilobytes) and uploads them; the device only rotates.
AGLM_HD void aglm_cu_rope_cos_sin(const aglm_hal_rope &c, const float *ff, const float corr[2], int32_t pos, const int32_t *planes,
                                  int j, float cs[2]) {
  double theta, scale;
  if (c.mode == 8 || c.mode == 24) {
    const int half = c.n_rot / 2;
    int plane, k = j;
    double dims = c.n_rot;
    if (c.mode == 8) {
      const int s0 = c.sections[0], s1 = s0 + c.sections[1], s2 = s1 + c.sections[2];
      plane = j < s0 ? 0 : j < s1 ? 1 : j < s2 ? 2 : 3;
    } else {
      plane = j < c.sections[0] ? 0 : 1;
      k = j < c.sections[0] ? j : j - c.sections[0];
      dims = half;
    }
    const int32_t p = planes ? planes[plane] : (plane == 3 ? 0 : pos);
    theta = (double)p * pow((double)c.freq_base, -2.0 * k / dims) * c.freq_scale;
    scale = c.attn_factor;
  } else {
    double extrap = (double)pos * pow((double)c.freq_base, -2.0 * j / c.n_rot);
    if (ff) extrap /= ff[j];
    theta = extrap * c.freq_scale;
    scale = c.attn_factor;
    if (c.ext_factor != 0) {
      const float span = corr[1] - corr[0] > 0.001f ? corr[1] - corr[0] : 0.001f;
      const double y = (j - corr[0]) / span;
      const double ramp = y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y;
      const double mix = (1 - ramp) * c.ext_factor;
      theta = theta * (1 - mix) + extrap * mix;
      scale = c.attn_factor * (1.0 + 0.1 * log(1.0 / c.freq_scale));
    }
  }
  cs[0] = (float)(cos(theta) * scale);
  cs[1] = (float)(sin(theta) * scale);
}

// ---- attention: online softmax over a split of the cells, then the combine ------------------------------------

// A split's running state: the largest score so far and the sum of exp(score - m); the value accumulator (one element
// per head dimension, spread over a warp's lanes on the device) is rescaled with the factor each step returns.
struct aglm_cu_softmax_state {
  float m, l;
};
AGLM_HD aglm_cu_softmax_state aglm_cu_softmax_init() { return {-INFINITY, 0.0f}; }
// Adds one score: returns the factor the accumulator is multiplied by (exp(m_old - m_new)) and sets *p, the weight of
// this cell's value row (exp(s - m_new)); acc = acc * factor + p * v.
AGLM_HD float aglm_cu_softmax_step(aglm_cu_softmax_state *st, float s, float *p) {
  const float m = s > st->m ? s : st->m;
  const float factor = expf(st->m - m); // 0 on the first step (m_old = -inf)
  *p = expf(s - m);
  st->l = st->l * factor + *p;
  st->m = m;
  return factor;
}
// Merging the splits of one (token, head): each split's weight exp(m_s - M) / L, M the largest m_s and L the sum of
// exp(m_s - M) l_s; the output is sum_s weight_s acc_s. Empty splits (m = -inf) weigh 0; no cell at all gives zeros.
AGLM_HD float aglm_cu_combine_max(const float *m, int n) {
  float mx = -INFINITY;
  for (int s = 0; s < n; s++) mx = m[s] > mx ? m[s] : mx;
  return mx;
}
AGLM_HD float aglm_cu_combine_inv_sum(const float *m, const float *l, int n, float mx) {
  if (mx == -INFINITY) return 0.0f;
  float sum = 0.0f;
  for (int s = 0; s < n; s++) sum += l[s] > 0.0f ? expf(m[s] - mx) * l[s] : 0.0f;
  return sum > 0.0f ? 1.0f / sum : 0.0f;
}
AGLM_HD float aglm_cu_combine_weight(float m_s, float l_s, float mx, float inv_sum) {
  return l_s > 0.0f ? expf(m_s - mx) * inv_sum : 0.0f;
}

// Cells per split for n cells: splits only pay off over long contexts (flash-decoding), so short lists stay whole.
AGLM_HD int aglm_cu_attn_split_cells(int n_kv, int max_splits) {
  const int min_cells = 256;
  int splits = (n_kv + min_cells - 1) / min_cells;
  if (splits > max_splits) splits = max_splits;
  if (splits < 1) splits = 1;
  return (n_kv + splits - 1) / splits;
}

// Element d of KV row `row` (F32 or F16 cache).
AGLM_HD float aglm_cu_kv_at(const void *base, int kv_type, int64_t i) {
  return kv_type == AGLM_TYPE_F16 ? aglm_cu_h2f(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

// Learned position tables resized to an image's patch grid (embed_interp): Keys' bicubic weight (a = -0.75) and the
// value of channel c at source coordinates (sx, sy) of a [rows][cols][width] grid, taps clamped to the edge: the 4 taps
// along x summed for each of the 4 rows, then the rows along y (the CPU backend's order, cpu-session.cpp).
AGLM_HD float aglm_cu_bicubic_weight(float d) {
  const float a = -0.75f;
  d = fabsf(d);
  if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}
AGLM_HD float aglm_cu_interp_value(const float *grid, int64_t width, int64_t cols, int64_t rows, float sx, float sy, int64_t c) {
  const float fx = floorf(sx), fy = floorf(sy), tx = sx - fx, ty = sy - fy;
  const int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
  const float wx[4] = {aglm_cu_bicubic_weight(tx + 1), aglm_cu_bicubic_weight(tx), aglm_cu_bicubic_weight(1 - tx), aglm_cu_bicubic_weight(2 - tx)};
  const float wy[4] = {aglm_cu_bicubic_weight(ty + 1), aglm_cu_bicubic_weight(ty), aglm_cu_bicubic_weight(1 - ty), aglm_cu_bicubic_weight(2 - ty)};
  float o = 0.0f;
  for (int dy = 0; dy < 4; dy++) {
    int64_t y = y0 - 1 + dy;
    y = y < 0 ? 0 : y > rows - 1 ? rows - 1 : y;
    float line = 0.0f;
    for (int dx = 0; dx < 4; dx++) {
      int64_t x = x0 - 1 + dx;
      x = x < 0 ? 0 : x > cols - 1 ? cols - 1 : x;
      line += wx[dx] * grid[(y * cols + x) * width + c];
    }
    o += wy[dy] * line;
  }
  return o;
}
