// Reference type tables and row (de)quantization: block sizes, F16/BF16 conversion, Q8_0 and Q4_0 (llama.cpp rounding);
// the other quantized types live in ref-quants.cpp.
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"

namespace {

struct aglm_type_info {
  int type;
  size_t block_size;
  size_t block_bytes;
};

// llama.cpp's block layouts.
const aglm_type_info aglm_type_infos[] = {
    {AGLM_TYPE_F32, 1, 4},       {AGLM_TYPE_F16, 1, 2},       {AGLM_TYPE_BF16, 1, 2},
    {AGLM_TYPE_Q4_0, 32, 18},    {AGLM_TYPE_Q4_1, 32, 20},    {AGLM_TYPE_Q5_0, 32, 22},
    {AGLM_TYPE_Q5_1, 32, 24},    {AGLM_TYPE_Q8_0, 32, 34},    {AGLM_TYPE_Q8_1, 32, 36},
    {AGLM_TYPE_Q2_K, 256, 84},   {AGLM_TYPE_Q3_K, 256, 110},  {AGLM_TYPE_Q4_K, 256, 144},
    {AGLM_TYPE_Q5_K, 256, 176},  {AGLM_TYPE_Q6_K, 256, 210},  {AGLM_TYPE_Q8_K, 256, 292},
};

const aglm_type_info *aglm_type_info_find(int type) {
  for (const aglm_type_info &t : aglm_type_infos)
    if (t.type == type) return &t;
  return nullptr;
}

// roundf (half away from zero), clamped to [-127, 127]; NaN gives 0 instead of undefined behaviour. Finite input
// never reaches the clamp (|x / d| <= 127); only the infinities that tiny or infinite scales produce do. Matmul relies
// on activations never holding -128.
int8_t aglm_q8_round(float v) {
  const float r = roundf(v);
  if (r != r) return 0;
  return r > 127.0f ? 127 : r < -127.0f ? -127 : (int8_t)r;
}

void aglm_q8_0_block_quantize(const float *x, aglm_block_q8_0 *y) {
  float amax = 0.0f;
  for (int j = 0; j < AGLM_QK8_0; j++) {
    const float a = fabsf(x[j]);
    if (a > amax) amax = a;
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = aglm_fp32_to_fp16(d);
  for (int j = 0; j < AGLM_QK8_0; j++) y->qs[j] = aglm_q8_round(x[j] * id);
}

// (int8)(v + 8.5f) clamped to [0, 15]; v is in [-8, 8] for finite input, NaN gives 0.
uint8_t aglm_q4_nibble(float v) {
  const float f = v + 8.5f;
  if (!(f > 0.0f)) return 0;
  return f >= 15.0f ? 15 : (uint8_t)(int)f;
}

void aglm_q4_0_block_quantize(const float *x, aglm_block_q4_0 *y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < AGLM_QK4_0; j++) {
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = aglm_fp32_to_fp16(d);
  for (int j = 0; j < AGLM_QK4_0 / 2; j++)
    y->qs[j] = (uint8_t)(aglm_q4_nibble(x[j] * id) | (aglm_q4_nibble(x[j + 16] * id) << 4));
}

void aglm_q8_0_row_dequantize(const aglm_block_q8_0 *b, float *dst, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float d = aglm_fp16_to_fp32(b[i].d);
    for (int j = 0; j < AGLM_QK8_0; j++) dst[i * AGLM_QK8_0 + j] = (float)b[i].qs[j] * d;
  }
}

void aglm_q4_0_row_dequantize(const aglm_block_q4_0 *b, float *dst, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float d = aglm_fp16_to_fp32(b[i].d);
    for (int j = 0; j < AGLM_QK4_0 / 2; j++) {
      dst[i * AGLM_QK4_0 + j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
      dst[i * AGLM_QK4_0 + j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

} // namespace

namespace aglm_ref {

void quantize_row_q8_0(const float *x, void *y, int64_t k) {
  aglm_block_q8_0 *b = (aglm_block_q8_0 *)y;
  for (int64_t i = 0; i < k / AGLM_QK8_0; i++) aglm_q8_0_block_quantize(x + i * AGLM_QK8_0, b + i);
}

void quantize_row_q4_0(const float *x, void *y, int64_t k) {
  aglm_block_q4_0 *b = (aglm_block_q4_0 *)y;
  for (int64_t i = 0; i < k / AGLM_QK4_0; i++) aglm_q4_0_block_quantize(x + i * AGLM_QK4_0, b + i);
}

// Quantized types convert whole blocks only; values of a trailing partial block (k % 32, k % 256 for K-quants) are
// set to 0.
void dequantize_row(int type, const void *src, float *dst, int64_t k) {
  switch (type) {
  case AGLM_TYPE_F32: memmove(dst, src, (size_t)k * sizeof(float)); return;
  case AGLM_TYPE_F16:
    for (int64_t i = 0; i < k; i++) dst[i] = aglm_fp16_to_fp32(((const aglm_fp16_t *)src)[i]);
    return;
  case AGLM_TYPE_BF16:
    for (int64_t i = 0; i < k; i++) dst[i] = aglm_bf16_to_fp32(((const aglm_bf16_t *)src)[i]);
    return;
  case AGLM_TYPE_Q8_0: aglm_q8_0_row_dequantize((const aglm_block_q8_0 *)src, dst, k / AGLM_QK8_0); break;
  case AGLM_TYPE_Q4_0: aglm_q4_0_row_dequantize((const aglm_block_q4_0 *)src, dst, k / AGLM_QK4_0); break;
  default: {
    const int64_t qk = (int64_t)aglm_type_block_size(type);
    if (qk < 32 || !dequantize_blocks(type, src, dst, k / qk)) return;
    for (int64_t i = k - k % qk; i < k; i++) dst[i] = 0.0f;
    return;
  }
  }
  for (int64_t i = k - k % 32; i < k; i++) dst[i] = 0.0f;
}

} // namespace aglm_ref

extern "C" size_t aglm_type_block_size(int type) {
  const aglm_type_info *t = aglm_type_info_find(type);
  return t ? t->block_size : 0;
}

extern "C" size_t aglm_type_block_bytes(int type) {
  const aglm_type_info *t = aglm_type_info_find(type);
  return t ? t->block_bytes : 0;
}

// 0 when the type is unknown, k is negative, or k is not a multiple of the block size.
extern "C" size_t aglm_row_bytes(int type, int64_t k) {
  const aglm_type_info *t = aglm_type_info_find(type);
  if (!t || k < 0 || k % (int64_t)t->block_size != 0) return 0;
  return (size_t)(k / (int64_t)t->block_size) * t->block_bytes;
}

extern "C" size_t aglm_quantize_row(int type, const float *src, void *dst, int64_t k) {
  const size_t bytes = aglm_row_bytes(type, k);
  if (bytes == 0 && k != 0) return 0;
  switch (type) {
  case AGLM_TYPE_F32: memmove(dst, src, bytes); return bytes;
  case AGLM_TYPE_F16:
    for (int64_t i = 0; i < k; i++) ((aglm_fp16_t *)dst)[i] = aglm_fp32_to_fp16(src[i]);
    return bytes;
  case AGLM_TYPE_BF16:
    for (int64_t i = 0; i < k; i++) ((aglm_bf16_t *)dst)[i] = aglm_fp32_to_bf16(src[i]);
    return bytes;
  case AGLM_TYPE_Q8_0: aglm_ref::quantize_row_q8_0(src, dst, k); return bytes;
  case AGLM_TYPE_Q4_0: aglm_ref::quantize_row_q4_0(src, dst, k); return bytes;
  case AGLM_TYPE_Q4_1: aglm_ref::quantize_row_q4_1(src, dst, k); return bytes;
  case AGLM_TYPE_Q5_0: aglm_ref::quantize_row_q5_0(src, dst, k); return bytes;
  case AGLM_TYPE_Q5_1: aglm_ref::quantize_row_q5_1(src, dst, k); return bytes;
  case AGLM_TYPE_Q8_1: aglm_ref::quantize_row_q8_1(src, dst, k); return bytes;
  case AGLM_TYPE_Q4_K: aglm_ref::quantize_row_q4_K(src, dst, k); return bytes;
  case AGLM_TYPE_Q5_K: aglm_ref::quantize_row_q5_K(src, dst, k); return bytes;
  case AGLM_TYPE_Q6_K: aglm_ref::quantize_row_q6_K(src, dst, k); return bytes;
  case AGLM_TYPE_Q8_K: aglm_ref::quantize_row_q8_K(src, dst, k); return bytes;
  default: return 0;
  }
}

// 1 on success; 0 if the type is unsupported, k is negative, or k is not a multiple of the block size.
extern "C" int aglm_dequantize_row(int type, const void *src, float *dst, int64_t k) {
  const bool known = aglm_ref::matmul_act_type(type) >= 0 || type == AGLM_TYPE_Q8_1 || type == AGLM_TYPE_Q8_K;
  if (!known || k < 0 || (k != 0 && aglm_row_bytes(type, k) == 0)) return 0;
  aglm_ref::dequantize_row(type, src, dst, k);
  return 1;
}
