// The CPU kernel table: pure compute over pointers and sizes, one table per CPU variant (ref, avx2, avx512, ...).
// The `ref` table is the specification; every other variant must match it within the tolerance its test states.
// Nothing here knows about models, graphs, threads or N-API.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "open-autoglm/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t aglm_fp16_t; // IEEE half, bit pattern
typedef uint16_t aglm_bf16_t; // bfloat16, bit pattern (top half of an IEEE float)

#define AGLM_QK8_0 32
#define AGLM_QK4_0 32
// Q8_0 block, llama.cpp layout: value[i] = qs[i] * d.                                   34 bytes / 32 values
typedef struct { aglm_fp16_t d; int8_t qs[AGLM_QK8_0]; } aglm_block_q8_0;
// Q4_0 block, llama.cpp layout: byte j holds value j in its low nibble and value j+16 in its high nibble;
// value = (nibble - 8) * d.                                                               18 bytes / 32 values
typedef struct { aglm_fp16_t d; uint8_t qs[AGLM_QK4_0 / 2]; } aglm_block_q4_0;

// The other llama.cpp block layouts (ggml-common.h), byte for byte. Values j and j+16 of a 32-block share byte j of
// qs (low nibble, high nibble); the 5th bit of value j is bit j of the little-endian 32-bit qh.
// Q4_1: value = q * d + m, q in [0, 15].                                                    20 bytes / 32 values
typedef struct { aglm_fp16_t d; aglm_fp16_t m; uint8_t qs[16]; } aglm_block_q4_1;
// Q5_0: value = (q - 16) * d, q in [0, 31].                                                 22 bytes / 32 values
typedef struct { aglm_fp16_t d; uint8_t qh[4]; uint8_t qs[16]; } aglm_block_q5_0;
// Q5_1: value = q * d + m, q in [0, 31].                                                    24 bytes / 32 values
typedef struct { aglm_fp16_t d; aglm_fp16_t m; uint8_t qh[4]; uint8_t qs[16]; } aglm_block_q5_1;
// Q8_1 (activations for Q4_1/Q5_1): value = qs[i] * d; s = d * sum(qs) (fp16).             36 bytes / 32 values
typedef struct { aglm_fp16_t d; aglm_fp16_t s; int8_t qs[32]; } aglm_block_q8_1;

// K-quants: super-blocks of 256 values.
#define AGLM_QK_K 256
// Q4_K: 8 sub-blocks of 32 with 6-bit scale sc_j and min m_j packed in `scales` (j < 4: sc = scales[j] & 63,
// m = scales[j+4] & 63; j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4, m = (scales[j+4] >> 4) |
// (scales[j] >> 6) << 4). value = d * sc_j * q - dmin * m_j, q in [0, 15]. Byte l of qs[32c..32c+31] holds value
// 64c + l (low nibble) and 64c + 32 + l (high nibble).                                    144 bytes / 256 values
typedef struct { aglm_fp16_t d; aglm_fp16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } aglm_block_q4_K;
// Q5_K: Q4_K plus a 5th bit: bit 2c of qh[l] for value 64c + l, bit 2c+1 for value 64c + 32 + l.
// q in [0, 31].                                                                            176 bytes / 256 values
typedef struct { aglm_fp16_t d; aglm_fp16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } aglm_block_q5_K;
// Q6_K: 16 groups of 16 with int8 scales; value = d * scales[i/16] * (q - 32), q in [0, 63]. For half h (128 values,
// ql[64h..], qh[32h..]) and l < 32: values 128h + l, +32, +64, +96 take the low nibble of ql[l], of ql[l+32], the high
// nibble of ql[l], of ql[l+32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l] as bits 4-5.          210 bytes / 256 values
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; aglm_fp16_t d; } aglm_block_q6_K;
// Q8_K (activations for the K-quants): value = qs[i] * d (float d); bsums[g] = sum of qs[16g..16g+15].
//                                                                                          292 bytes / 256 values
typedef struct { float d; int8_t qs[AGLM_QK_K]; int16_t bsums[AGLM_QK_K / 16]; } aglm_block_q8_K;

#ifdef __cplusplus
static_assert(sizeof(aglm_block_q4_1) == 20 && sizeof(aglm_block_q5_0) == 22 && sizeof(aglm_block_q5_1) == 24 &&
                  sizeof(aglm_block_q8_1) == 36 && sizeof(aglm_block_q4_K) == 144 && sizeof(aglm_block_q5_K) == 176 &&
                  sizeof(aglm_block_q6_K) == 210 && sizeof(aglm_block_q8_K) == 292,
              "llama.cpp block sizes");
#endif

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
  // 0: w is in the GGUF layout described above. 1: w was written by this table's repack() for (w_type, m, k) and
  // w_row_bytes is meaningless; only a table whose repack_size(w_type, m, k) > 0 is ever handed such weights.
  int w_packed;
} aglm_matmul_args;

// Attention for one query token and one head, over n_kv[t] cached keys/values: the cache rows rows[t][0..n_kv[t]),
// in that order (the token's sequence's cells, position order), or rows [0, n_kv[t]) when rows is null.
typedef struct {
  const float *q;      // queries [n_tokens][n_head * head_dim], row stride q_stride floats
  int64_t q_stride;
  const float *k;      // key cache of this layer [n_cells][n_head_kv * head_dim], row stride kv_stride elements
  const float *v;      // value cache, same layout as k
  int64_t kv_stride;
  float *out;          // output [n_tokens][n_head * head_dim], row stride out_stride floats
  int64_t out_stride;
  const int32_t *n_kv; // n_kv[t]: how many cache rows token t attends to
  int64_t n_head, n_head_kv, head_dim;
  float scale;         // usually 1/sqrt(head_dim)
  int kv_type;         // element type of k and v: AGLM_TYPE_F32 (0, the default) or AGLM_TYPE_F16. Strides stay in
                       // elements.
  const int32_t *const *rows; // (optional) rows[t]: the n_kv[t] cache rows token t attends to, in order; null: the
                              // rows 0, 1, ..., n_kv[t] - 1
} aglm_attn_args;

// The cache row of token t's j-th attended entry.
static inline int64_t aglm_attn_row(const aglm_attn_args *a, int64_t t, int64_t j) {
  return a->rows ? (int64_t)a->rows[t][j] : j;
}

typedef struct aglm_kernels {
  const char *name; // "ref", "avx2", "avx512", "neon"

  // Which activation type matmul wants for weights of `w_type` (llama.cpp's pairing): AGLM_TYPE_F32 for F32/F16/BF16,
  // AGLM_TYPE_Q8_0 for Q8_0/Q4_0/Q5_0, AGLM_TYPE_Q8_1 for Q4_1/Q5_1, AGLM_TYPE_Q8_K for Q4_K/Q5_K/Q6_K; -1 if
  // unsupported. Activations in Q8_0/Q8_1/Q8_K come from quantize_row_act.
  int (*matmul_act_type)(int w_type);
  // Quantize k floats (k % 32 == 0) into k/32 Q8_0 blocks (llama.cpp rounding: d = amax/127, q = round(x/d)).
  // q is always in [-127, 127]: the SIMD matmuls rely on activations never holding -128.
  void (*quantize_row_q8_0)(const float *x, void *y, int64_t k);
  // See aglm_matmul_args. Supports w_type F32, F16, BF16 (x in F32) and the quantized types above (x in
  // matmul_act_type(w_type); k a multiple of the block size, only whole blocks count). Other types: no-op.
  // Calls on disjoint [r0, r1) may run concurrently (the SIMD variants keep a per-thread scratch buffer).
  void (*matmul)(const aglm_matmul_args *a, int64_t r0, int64_t r1);
  // Convert k values of a row of `type` to floats (every type matmul supports; a partial last block gives zeros).
  void (*dequantize_row)(int type, const void *src, float *dst, int64_t k);

  // y = x / sqrt(mean(x^2) + eps) * w, over n values (y may alias x).
  void (*rms_norm)(const float *x, const float *w, float *y, int64_t n, float eps);
  // Rotate, in place, each of n_heads heads of head_dim values (heads contiguous) at one position.
  // cos_sin holds n_rot/2 (cos, sin) pairs for that position. mode 0 ("normal"): pairs (x[2i], x[2i+1]) for
  // i < n_rot/2; mode 2 ("neox"): pairs (x[i], x[i + n_rot/2]). Dimensions past n_rot are left as they are.
  void (*rope)(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cos_sin, int mode);
  // y = silu(gate) * up, where silu(x) = x / (1 + exp(-x)).
  void (*silu_mul)(const float *gate, const float *up, float *y, int64_t n);
  // y = a + b.
  void (*add)(const float *a, const float *b, float *y, int64_t n);
  // y = a * b (elementwise).
  void (*mul)(const float *a, const float *b, float *y, int64_t n);

  // Optional load-time repacking of matmul weights into a layout of this table's own (null in tables that keep the
  // GGUF layout). repack_size: the bytes the packed copy of a [rows][k] matrix of w_type needs, or 0 when this table
  // multiplies that type in the GGUF layout. repack: writes that copy (dst 64-byte aligned, all repack_size bytes
  // written, padding included) from the GGUF rows at src (rows back to back). Afterwards matmul is called with
  // w = dst and w_packed = 1; the GGUF copy is no longer read.
  size_t (*repack_size)(int w_type, int64_t rows, int64_t k);
  void (*repack)(int w_type, const void *src, void *dst, int64_t rows, int64_t k);

  // Quantize k floats into activation blocks of act_type: AGLM_TYPE_Q8_0 (= quantize_row_q8_0), AGLM_TYPE_Q8_1
  // (k % 32 == 0) or AGLM_TYPE_Q8_K (k % 256 == 0), llama.cpp's reference rules; the values are always in
  // [-127, 127]. Other types: no-op. Every table's output is bit-identical to aglm_ref::quantize_row_act.
  void (*quantize_row_act)(int act_type, const float *x, void *y, int64_t k);

  // Every query head of KV head g for token t at once (heads g*G .. g*G+G-1, G = n_head / n_head_kv), so each cached
  // key and value row is read once for the group rather than once per head; K/V in F32 or F16 (a->kv_type). For each
  // head h: out = softmax(scale * q.K^T) . V over the token's rows (aglm_attn_row), head h reading KV head h / G: the
  // reference is aglm_ref::attention, per head. scratch holds at least G * n_kv[t] floats.
  void (*attention_group)(const aglm_attn_args *a, int64_t t, int64_t g, float *scratch);

  // y = (x - mean) / sqrt(variance + eps) * w + b over n values (b may be null: no bias; y may alias x). The mean and
  // the variance (of x - mean) are summed in double, then y = ((x - mean) * scale) * w + b in float, as ggml_norm
  // followed by ggml's mul and add.
  void (*layer_norm)(const float *x, const float *w, const float *b, float *y, int64_t n, float eps);
  // y = gelu(x), ggml's tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))), computed as
  // x / (1 + exp(-2 sqrt(2/pi) x (1 + 0.044715 x^2))) (the same function, without the cancellation of 1 + tanh for
  // negative x); y may alias x.
  void (*gelu)(const float *x, float *y, int64_t n);
  // Optional, with repack: row `row` of a matrix of `rows` rows repacked by this table's repack(), dequantized to k
  // floats exactly as dequantize_row dequantizes the GGUF row (null: a weight that is also gathered by rows, like a
  // tied embedding table, keeps the GGUF layout).
  void (*unpack_row)(int w_type, const void *packed, int64_t rows, int64_t k, int64_t row, float *dst);
  // y = 0.5 x (1 + erf(x / sqrt 2)), the exact GELU (vision encoders' projectors); the reference uses erff, the SIMD
  // variants erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7); y may alias x.
  void (*gelu_erf)(const float *x, float *y, int64_t n);
} aglm_kernels;

// The variant tables. Only those compiled for the target architecture exist (see native/kernels/CMakeLists.txt).
extern const aglm_kernels aglm_kernels_ref;
#if defined(__x86_64__) || defined(_M_X64)
extern const aglm_kernels aglm_kernels_avx2;
extern const aglm_kernels aglm_kernels_avx512;
extern const aglm_kernels aglm_kernels_amx; // AVX-512 + AMX tiles (x86-amx/); only selected where AMX runs
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
extern const aglm_kernels aglm_kernels_neon;
#endif

// Scalar conversions and (de)quantization used by the file tools (quantize) and tests; all are the reference.
size_t aglm_type_block_size(int type);  // values per block (1 for float types), 0 if unknown
size_t aglm_type_block_bytes(int type); // bytes per block, 0 if unknown
size_t aglm_row_bytes(int type, int64_t k);
// Quantize k floats of a row into `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q8_1, Q4_K, Q5_K, Q6_K, Q8_K:
// llama.cpp's reference quantizers, the ones llama-quantize uses without an importance matrix); returns 0 if
// unsupported or k is not a multiple of the block size, else the number of bytes written.
size_t aglm_quantize_row(int type, const float *src, void *dst, int64_t k);
// Dequantize k values of `type` (every type aglm_quantize_row writes); returns 0 if unsupported.
int aglm_dequantize_row(int type, const void *src, float *dst, int64_t k);

#ifdef __cplusplus
}
#endif
