/* An example open-autoglm kernel plugin (include/open-autoglm/kernel-plugin.h): a CPU matmul of Q8_0 weights (the
 * GGUF layout) by f32 activations, so the engine hands it its activations unquantized. Plain C99, no dependency but
 * the public header. EXAMPLE_PLUGIN_ABI_VERSION (default: the header's version) lets the build make a copy that
 * claims another ABI version, which the engine must refuse. */
#include <stdio.h>
#include <string.h>

#include "open-autoglm/kernel-plugin.h"

#ifndef EXAMPLE_PLUGIN_ABI_VERSION
#define EXAMPLE_PLUGIN_ABI_VERSION AGLM_KERNEL_PLUGIN_ABI_VERSION
#endif

/* Q8_0, llama.cpp's layout: value[i] = qs[i] * d, d an IEEE half.                          34 bytes / 32 values */
#define QK8_0 32
typedef struct {
  uint16_t d;
  int8_t qs[QK8_0];
} example_block_q8_0;

/* IEEE half (bit pattern) to float, subnormals, infinities and NaNs included. */
static float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  float f;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else { /* subnormal: mant * 2^-24, normalised */
    exp = 113;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Whole blocks only: k must be a multiple of 32. */
static int32_t q8_0_supports(int64_t k, int64_t m) {
  return k > 0 && m > 0 && k % QK8_0 == 0;
}

/* y[t][r] = sum over blocks b of d_b * (qs_b . x[t][32b .. 32b + 31]). Only stack state: rows ranges may run at once. */
static void q8_0_f32_matmul(const aglm_kernel_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / QK8_0;
  int64_t r, t, b;
  int i;
  for (r = r0; r < r1; r++) {
    const example_block_q8_0 *w = (const example_block_q8_0 *)((const char *)a->w + r * a->w_row_bytes);
    for (t = 0; t < a->n; t++) {
      const float *x = (const float *)((const char *)a->x + t * a->x_row_bytes);
      float sum = 0.0f;
      for (b = 0; b < nb; b++) {
        const int8_t *q = w[b].qs;
        const float *xb = x + b * QK8_0;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (i = 0; i < QK8_0; i += 4) {
          s0 += q[i] * xb[i];
          s1 += q[i + 1] * xb[i + 1];
          s2 += q[i + 2] * xb[i + 2];
          s3 += q[i + 3] * xb[i + 3];
        }
        sum += half_to_float(w[b].d) * ((s0 + s1) + (s2 + s3));
      }
      a->y[t * a->y_stride + r] = sum;
    }
  }
}

static const aglm_kernel_desc example_kernels[] = {
    {AGLM_OP_MATMUL, AGLM_TYPE_Q8_0, "cpu", "q8_0-f32-matmul", AGLM_TYPE_F32, q8_0_supports, q8_0_f32_matmul},
};

static const aglm_kernel_plugin example_plugin = {
    EXAMPLE_PLUGIN_ABI_VERSION, sizeof(aglm_kernel_plugin), sizeof(aglm_kernel_desc), "example-q8_0", "1.0.0",
    (int32_t)(sizeof example_kernels / sizeof example_kernels[0]), example_kernels,
};

AGLM_KERNEL_PLUGIN_EXPORT const aglm_kernel_plugin *aglm_kernel_plugin_entry(uint32_t abi_version, char *why, size_t why_len) {
  if (abi_version != EXAMPLE_PLUGIN_ABI_VERSION) {
    if (why && why_len) snprintf(why, why_len, "example-q8_0 was built for kernel plugin ABI version %u", (unsigned)EXAMPLE_PLUGIN_ABI_VERSION);
    return NULL;
  }
  return &example_plugin;
}
