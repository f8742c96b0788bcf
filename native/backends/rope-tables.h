// The (cos, sin) tables of a rope configuration for a batch's tokens, computed on the host in double precision, as
// every backend's rope reads them: pair j of token i at t[i * n_rot + 2j]. One definition for the CPU and the Vulkan
// backends (the CUDA backend keeps the same arithmetic in __host__ __device__ form, tested against the CPU's).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "open-autoglm/backend.h"

namespace aglm_backend {

// YaRN's correction range (ggml's ggml_rope_yarn_corr_dims, in float as there): the rotary dimensions from which on
// frequencies are interpolated rather than extrapolated.
inline void yarn_corr_dims(const aglm_hal_rope &c, float dims[2]) {
  const float pi = 3.14159265358979323846f;
  auto corr_dim = [&](float n_rot_beta) { return (float)c.n_rot * logf((float)c.n_ctx_orig / (n_rot_beta * 2 * pi)) / (2 * logf(c.freq_base)); };
  dims[0] = std::max(0.0f, floorf(corr_dim(c.beta_fast)));
  dims[1] = std::min((float)(c.n_rot - 1), ceilf(corr_dim(c.beta_slow)));
}

// n tokens at positions pos (planes: 4 planes [4][n] of multi-section positions, or null), frequency factors ff
// (n_rot / 2, or null). theta = position * base^(-2j/n_rot) / ff[j], times freq_scale (linear scaling); with YaRN
// (ext_factor != 0) blended towards the unscaled angle for the fast dimensions and cos/sin scaled by attn_factor *
// (1 + 0.1 ln(1/freq_scale)), as ggml's rope_yarn. Modes 8 (M-RoPE: each pair's position plane by its section,
// exponents over the whole rotated width) and 24 (vision: the two halves of the pairs on planes 0 and 1, exponents
// restarting per half).
inline void rope_table(const aglm_hal_rope &c, int64_t n, const int32_t *pos, const int32_t *planes, const float *ff, float *t) {
  if (c.mode == 8 || c.mode == 24) {
    const int half = c.n_rot / 2;
    for (int64_t i = 0; i < n; i++)
      for (int j = 0; j < half; j++) {
        int plane, k = j;
        double dims = c.n_rot;
        if (c.mode == 8) {
          plane = j < c.sections[0] ? 0 : j < c.sections[0] + c.sections[1] ? 1 : j < c.sections[0] + c.sections[1] + c.sections[2] ? 2 : 3;
        } else {
          plane = j < c.sections[0] ? 0 : 1;
          k = j < c.sections[0] ? j : j - c.sections[0];
          dims = half;
        }
        const int32_t p = planes ? planes[plane * n + i] : (plane == 3 ? 0 : pos[i]);
        const double theta = (double)p * std::pow((double)c.freq_base, -2.0 * k / dims) * c.freq_scale;
        t[i * c.n_rot + 2 * j] = (float)(std::cos(theta) * c.attn_factor);
        t[i * c.n_rot + 2 * j + 1] = (float)(std::sin(theta) * c.attn_factor);
      }
    return;
  }
  float corr[2] = {0, 0};
  if (c.ext_factor != 0) yarn_corr_dims(c, corr);
  const double mscale = c.ext_factor != 0 ? c.attn_factor * (1.0 + 0.1 * std::log(1.0 / c.freq_scale)) : c.attn_factor;
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < c.n_rot / 2; j++) {
      double extrap = (double)pos[i] * std::pow((double)c.freq_base, -2.0 * j / c.n_rot);
      if (ff) extrap /= ff[j];
      double theta = extrap * c.freq_scale;
      if (c.ext_factor != 0) {
        const double y = (j - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
        const double mix = (1 - std::min(1.0, std::max(0.0, y))) * c.ext_factor;
        theta = theta * (1 - mix) + extrap * mix;
      }
      t[i * c.n_rot + 2 * j] = (float)(std::cos(theta) * mscale);
      t[i * c.n_rot + 2 * j + 1] = (float)(std::sin(theta) * mscale);
    }
}

} // namespace aglm_backend
