// The CPU kernel table: pure compute over pointers and sizes, one table per CPU variant (ref, avx2, avx512, ...).
// The `ref` table is the specification; every other variant must match it within the tolerance its test states.
// Nothing here knows about models, graphs, threads or N-API.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Tensor element types, numbered as GGML/GGUF number them.
enum aglm_type {
  AGLM_TYPE_F32 = 0,
  AGLM_TYPE_F16 = 1,
  AGLM_TYPE_Q4_0 = 2,
  AGLM_TYPE_Q4_1 = 3,
  AGLM_TYPE_Q5_0 = 6,
  AGLM_TYPE_Q5_1 = 7,
  AGLM_TYPE_Q8_0 = 8,
  AGLM_TYPE_Q8_1 = 9,
  AGLM_TYPE_Q2_K = 10,
  AGLM_TYPE_Q3_K = 11,
  AGLM_TYPE_Q4_K = 12,
  AGLM_TYPE_Q5_K = 13,
  AGLM_TYPE_Q6_K = 14,
  AGLM_TYPE_Q8_K = 15,
  AGLM_TYPE_BF16 = 30,
  AGLM_TYPE_COUNT = 40,
};

typedef uint16_t aglm_fp16_t; // IEEE half, bit pattern
typedef uint16_t aglm_bf16_t; // bfloat16, bit pattern (top half of an IEEE float)

#define AGLM_QK8_0 32
#define AGLM_QK4_0 32
// Q8_0 block, llama.cpp layout: value[i] = qs[i] * d.                                   34 bytes / 32 values
typedef struct { aglm_fp16_t d; int8_t qs[AGLM_QK8_0]; } aglm_block_q8_0;
// Q4_0 block, llama.cpp layout: byte j holds value j in its low nibble and value j+16 in its high nibble;
// value = (nibble - 8) * d.                                                               18 bytes / 32 values
typedef struct { aglm_fp16_t d; uint8_t qs[AGLM_QK4_0 / 2]; } aglm_block_q4_0;

// Y[t][r] = dot(W row r, X row t) for the rows r in [r0, r1) and all tokens t in [0, n).
typedef struct {
  const void *w;       // weights [m][k] in w_type; row r starts at (const char *)w + r * w_row_bytes
  size_t w_row_bytes;
  int w_type;          // enum aglm_type
  const void *x;       // activations [n][k] in act_type(w_type); row t starts at (const char *)x + t * x_row_bytes
  size_t x_row_bytes;
  float *y;            // output [n][y_stride], written at y[t * y_stride + r]
  int64_t y_stride;
  int64_t n, k, m;     // tokens, inner dimension, weight rows
} aglm_matmul_args;

// Causal attention for one query token and one head, over the cached keys/values of positions [0, n_kv).
typedef struct {
  const float *q;      // queries [n_tokens][n_head * head_dim], row stride q_stride floats
  int64_t q_stride;
  const float *k;      // key cache of this layer [n_ctx][n_head_kv * head_dim], row stride kv_stride floats
  const float *v;      // value cache, same layout as k
  int64_t kv_stride;
  float *out;          // output [n_tokens][n_head * head_dim], row stride out_stride floats
  int64_t out_stride;
  const int32_t *n_kv; // n_kv[t]: how many cached positions token t attends to (its position + 1 for causal)
  int64_t n_head, n_head_kv, head_dim;
  float scale;         // usually 1/sqrt(head_dim)
} aglm_attn_args;

typedef struct aglm_kernels {
  const char *name; // "ref", "avx2", "avx512", "neon"

  // Which activation type matmul wants for weights of `w_type`: AGLM_TYPE_F32 or AGLM_TYPE_Q8_0; -1 if unsupported.
  int (*matmul_act_type)(int w_type);
  // Quantize k floats (k % 32 == 0) into k/32 Q8_0 blocks (llama.cpp rounding: d = amax/127, q = round(x/d)).
  // q is always in [-127, 127]: the SIMD matmuls rely on activations never holding -128.
  void (*quantize_row_q8_0)(const float *x, void *y, int64_t k);
  // See aglm_matmul_args. Supports w_type F32, F16, BF16 (x in F32) and Q8_0, Q4_0 (x in Q8_0, from
  // quantize_row_q8_0; k % 32 == 0, only whole blocks count). Other types: no-op. Calls on disjoint [r0, r1) may run
  // concurrently (the SIMD variants keep a per-thread scratch buffer).
  void (*matmul)(const aglm_matmul_args *a, int64_t r0, int64_t r1);
  // Convert k values of a row of `type` to floats (every type matmul supports; a partial last block gives zeros).
  void (*dequantize_row)(int type, const void *src, float *dst, int64_t k);

  // y = x / sqrt(mean(x^2) + eps) * w, over n values (y may alias x).
  void (*rms_norm)(const float *x, const float *w, float *y, int64_t n, float eps);
  // Rotate, in place, each of n_heads heads of head_dim values (heads contiguous) at one position.
  // cos_sin holds n_rot/2 (cos, sin) pairs for that position. mode 0 ("normal"): pairs (x[2i], x[2i+1]) for
  // i < n_rot/2; mode 2 ("neox"): pairs (x[i], x[i + n_rot/2]). Dimensions past n_rot are left as they are.
  void (*rope)(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cos_sin, int mode);
  // One (token t, head h) of aglm_attn_args: out = softmax(scale * q.K^T) . V over positions [0, n_kv[t]);
  // grouped-query: head h reads KV head h / (n_head / n_head_kv). scratch holds at least n_kv[t] floats.
  void (*attention)(const aglm_attn_args *a, int64_t t, int64_t h, float *scratch);
  // y = silu(gate) * up, where silu(x) = x / (1 + exp(-x)).
  void (*silu_mul)(const float *gate, const float *up, float *y, int64_t n);
  // y = a + b.
  void (*add)(const float *a, const float *b, float *y, int64_t n);
  // y = a * b (elementwise).
  void (*mul)(const float *a, const float *b, float *y, int64_t n);
} aglm_kernels;

// The variant tables. Only those compiled for the target architecture exist (see native/kernels/CMakeLists.txt).
extern const aglm_kernels aglm_kernels_ref;
#if defined(__x86_64__) || defined(_M_X64)
extern const aglm_kernels aglm_kernels_avx2;
extern const aglm_kernels aglm_kernels_avx512;
#endif

// Scalar conversions and (de)quantization used by the file tools (quantize) and tests; all are the reference.
size_t aglm_type_block_size(int type);  // values per block (1 for float types), 0 if unknown
size_t aglm_type_block_bytes(int type); // bytes per block, 0 if unknown
size_t aglm_row_bytes(int type, int64_t k);
// Quantize k floats of a row into `type` (F32, F16, BF16, Q8_0, Q4_0); returns 0 if unsupported or k is not a
// multiple of the block size, else the number of bytes written.
size_t aglm_quantize_row(int type, const float *src, void *dst, int64_t k);
// Dequantize k values of `type`; returns 0 if unsupported.
int aglm_dequantize_row(int type, const void *src, float *dst, int64_t k);

#ifdef __cplusplus
}
#endif
