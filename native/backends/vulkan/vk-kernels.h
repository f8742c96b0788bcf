// The Vulkan kernels' interface: for each compute shader, its bindings, its push constants (a struct laid out exactly
// as the shader's push_constant block: 32-bit fields only) and how many workgroups a dispatch needs. Buffers are
// always bound whole; every offset travels in the push constants (elements or bytes, as each field says), so no
// descriptor ever depends on a device's offset alignment.
//
// Conventions shared by every shader:
//   - The activation arena is a float buffer; values are [rows][width] at a float offset.
//   - Weights live in weight buffers read as 32-bit words (`uint w[]`): a quantized row starts at any byte offset (a
//     Q4_0 row is 18 bytes a block), so shaders address bytes and halves inside words (little-endian).
//   - f32 vectors (norm weights, biases) are read through a float view of a weight buffer at a float offset.
#pragma once

#include <cstdint>

#include "open-autoglm/types.h"

namespace aglm_vk {

// matmul_<type> (shaders/matmul.comp, one build per weight type):
//   y[y_off + t * y_stride + r] = sum_k W[r][k] * x[x_off + t * x_stride + k] (+ b[b_off + r] when has_bias)
//   for r < m, t < n; W row r = the GGUF row at byte w_off + r * row_bytes of binding 0.
// Bindings: 0 W (uint words), 1 X (float, the arena), 2 Y (float, the arena), 3 B (float view of the bias's buffer).
struct matmul_push {
  uint32_t w_off, row_bytes, k, m, n;
  uint32_t x_off, x_stride, y_off, y_stride;
  uint32_t b_off, has_bias;
};

// The integer-dot path (devices with VK_KHR_shader_integer_dot_product; vk-context.h enabled_paths), for the 32-block
// types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: quantize_q8 writes the activation rows as int8 blocks into a session scratch
// buffer, then matmul_dot_<type> multiplies them block by block with integer dot products, as the CPU reference does
// (llama.cpp's pairing: Q8_0 activations for Q8_0/Q4_0/Q5_0, Q8_1 for Q4_1/Q5_1), so its results match the CPU's on the
// weights' own type (NMSE ~1e-14; only the order of the float sum over blocks differs).
//
// quantize_q8 (shaders/quantize_q8.comp): for t < n and block j < k / 32, the 32 values at x[x_off + t * x_stride +
// 32 j ..] become the 9 words at q[q_off + t * q_stride + 9 j]: d | s << 16 (IEEE halves; d = amax / 127, s = d *
// sum(q)), then 32 int8 q = roundf(x / d), 4 a word, bit for bit the CPU's quantize_row_act (Q8_0 and Q8_1 in one).
// Bindings: 0 X (float, the arena), 1 Q (uint words, the scratch). One invocation per block, quantize_q8_wg a
// workgroup, groups_2d (vk-ops.h) over the blocks.
struct quantize_q8_push {
  uint32_t x_off, x_stride, k, n, q_off, q_stride;
};
constexpr uint32_t quantize_q8_wg = 64, q8_block_words = 9;

// quantize_q8k (shaders/quantize_q8k.comp), for the K-quants Q4_K, Q5_K, Q6_K: for t < n and super-block j < k / 256,
// the 256 values at x[x_off + t * x_stride + 256 j ..] become the 73 words at q[q_off + t * q_stride + 73 j], the bytes
// of aglm_block_q8_K (float d, 256 int8, 16 int16 bsums), bit for bit the CPU's quantize_row_act(Q8_K). Bindings and
// push constants: quantize_q8's; one invocation per super-block, quantize_q8_wg a workgroup, groups_2d.
constexpr uint32_t q8k_block_words = 73;

// matmul_dot_<type> (shaders/matmul_dot.comp): matmul_<type>'s contract and dispatch (matmul_push, matmul_groups) with
// binding 1 the scratch (uint words) instead of the arena: x_off and x_stride address quantize_q8's blocks in words
// (for Q4_K, Q5_K, Q6_K, shaders/matmul_dot_k.comp: quantize_q8k's super-blocks).

// get_rows_<type> (shaders/get_rows.comp, one build per weight type):
//   y[y_off + t * y_stride + c] = W[idx[idx_off + t]][c] for t < n, c < k, dequantized to f32.
// Bindings: 0 W (uint words), 1 IDX (int), 2 Y (float, the arena).
struct get_rows_push {
  uint32_t w_off, row_bytes, k, n;
  uint32_t idx_off, y_off, y_stride;
};

// ---- dispatch sizes of matmul_<type> and get_rows_<type> (shaders/matmul.comp, get_rows.comp, quants.glsl) ----------
// Both kernels read W at any byte offset but may load the whole 32-bit word holding a row's last byte: a weight buffer
// is sized in whole words. Byte offsets (w_off + r * row_bytes) and arena offsets are 32-bit: a buffer of at most 4 GiB.
// Nothing is checked on the device: the caller validates shapes, offsets and get_rows' row indices against the buffers.
// matmul's binding 3 needs a buffer even when has_bias is 0 (any buffer; it is then not read), and its y region must
// not overlap its x region. Dequantized values equal aglm_dequantize_row's bit for bit (get_rows is exact); matmul's
// sums run in another order than the CPU's (f32; NMSE against a double reference at k = 4096: ~1e-14 decode,
// ~1e-12 tiled).
//
// matmul, two paths chosen by n (matmul.comp):
//   - n <= matmul_tok (decode): a workgroup of matmul_wg invocations owns matmul_rows weight rows and the n tokens; its
//     invocations split k into units of 32 values (8 for F32/F16/BF16), dequantize each unit once for every token, and
//     sum in shared memory (mm_<type>_sg: subgroupAdd first; only on devices whose compute stage has subgroup
//     arithmetic). Groups: row groups of matmul_rows, one token group.
//   - n > matmul_tok (prompts): a workgroup owns a tile of matmul_tile rows x matmul_tile tokens; per 32 values of k it
//     dequantizes the tile's weights once into shared memory for all its tokens. Groups: row groups of matmul_tile,
//     token groups of matmul_tile.
// k: a multiple of the type's block size (any k for the float types). Row groups are split over x and z (z * gx + x;
// maxComputeWorkGroupCount may be 65535), token groups go along y.
constexpr uint32_t matmul_wg = 64, matmul_rows = 2, matmul_tok = 8, matmul_tile = 32;
constexpr uint32_t max_groups = 65535; // per dimension, the least every device allows

// The row groups of `rows` rows each over x and z, `token_groups` along y. max_x: the most groups along x (a smaller
// value only to test the split on a small m).
inline void rows_by_tokens(uint32_t m, uint32_t rows, uint32_t token_groups, uint32_t g[3], uint32_t max_x = max_groups) {
  const uint32_t row_groups = (m + rows - 1) / rows;
  g[0] = row_groups < max_x ? row_groups : max_x;
  g[1] = token_groups;
  g[2] = g[0] ? (row_groups + g[0] - 1) / g[0] : 0;
}

inline void matmul_groups(uint32_t m, uint32_t n, uint32_t g[3], uint32_t max_x = max_groups) {
  const bool tiled = n > matmul_tok;
  rows_by_tokens(m, tiled ? matmul_tile : matmul_rows, tiled ? (n + matmul_tile - 1) / matmul_tile : n ? 1 : 0, g, max_x);
}

// The f16 prompt tiles (mmh_<type>, mmk_<type>, mme_<type>: matmul.comp's tiled path alone, for n > matmul_tok and
// k % 32 == 0): matmul_push, tiles of matmul_tile (mmh_) or matmul_tile_coop (mmk_, mme_) rows x tokens, row groups
// over x and z.
constexpr uint32_t matmul_tile_coop = 64;
inline void matmul_tile_groups(uint32_t m, uint32_t n, uint32_t tile, uint32_t g[3]) { rows_by_tokens(m, tile, (n + tile - 1) / tile, g); }

// get_rows: one invocation per unit of a row (32 values; 8 for the float types, whose last unit may be partial),
// get_rows_wg a workgroup along x; y and z split the tokens (z * gy + y). `type` is the enum aglm_type.
constexpr uint32_t get_rows_wg = 64;

inline uint32_t unit_values(int type) {
  return type == AGLM_TYPE_F32 || type == AGLM_TYPE_F16 || type == AGLM_TYPE_BF16 ? 8 : 32;
}

inline void get_rows_groups(int type, uint32_t k, uint32_t n, uint32_t g[3]) {
  const uint32_t uv = unit_values(type), units = (k + uv - 1) / uv;
  g[0] = (units + get_rows_wg - 1) / get_rows_wg;
  g[1] = n < max_groups ? n : max_groups;
  g[2] = g[1] ? (n + g[1] - 1) / g[1] : 0;
  if (g[0] == 0) g[1] = g[2] = 0;
}

} // namespace aglm_vk
