// The Vulkan backend's non-matmul kernels: bindings and push constants of each shader (a struct laid out exactly as
// the shader's push_constant block: 32-bit fields only), with the conventions of vk-kernels.h (buffers bound whole,
// offsets in elements in the push constants). "meta" is the session's host-written batch buffer: int32 words (token
// ids, positions, cells, cell lists, row lists) and float words (rope cos/sin tables, grid coordinates).
#pragma once

#include <cstdint>

namespace aglm_vk {

// Work items are spread over x and y (groups_2d) so that a dispatch never exceeds the 65535 groups a dimension is
// guaranteed to allow; shaders rebuild the flat index as (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x).
inline void groups_2d(uint64_t groups, uint32_t g[3]) {
  const uint64_t x = groups < 65535 ? (groups ? groups : 1) : 65535;
  g[0] = (uint32_t)x;
  g[1] = (uint32_t)((groups + x - 1) / x);
  if (g[1] == 0) g[1] = 1;
  g[2] = 1;
}

// eltwise.comp, 256 invocations a group, one element each: o[o_off + i] = f(a[a_off + i], b[...]) for i < n, where
// mode 0 add (b in the arena at b_off), 1 mul, 2 silu_mul (a the gate), 3 gelu (tanh form), 4 gelu_erf, 5 add_vector
// (b = the vector v[v_off + i % width] of binding 1).
// Bindings: 0 A (float, arena), 1 V (float, the vectors buffer), 2 O (float, arena).
enum { ELT_ADD = 0, ELT_MUL = 1, ELT_SILU_MUL = 2, ELT_GELU = 3, ELT_GELU_ERF = 4, ELT_ADD_VECTOR = 5 };
struct eltwise_push {
  uint32_t mode, n, width, a_off, b_off, o_off, v_off;
};
constexpr uint32_t kEltwiseGroup = 256;

// norm.comp, one group (128 invocations) a row: mode 0 rms_norm, 1 layer_norm; y = norm(x) * w (+ b).
// Bindings: 0 A (float, arena), 1 V (float, the vectors buffer), 2 O (float, arena).
struct norm_push {
  uint32_t mode, width, rows, in_off, out_off, w_off, has_w, b_off, has_b;
  float eps;
};

// rope.comp, one invocation a (token, head, pair or passed-through element): the head's pairs rotated by the token's
// (cos, sin) row of the table at meta float offset tab_off (n_rot floats a token, as the CPU computes them).
// Bindings: 0 A (float, arena), 1 T (float view of meta), 2 O (float, arena).
struct rope_push {
  uint32_t rows, heads, head_dim, n_rot, neox, in_off, out_off, tab_off;
};

// kv_store.comp: the batch's keys and values into their cells: K row t -> cell[t] of the slot's K region, V likewise;
// f16 caches pack two values a word (widths are even). One invocation a (token, word).
// Bindings: 0 A (float, arena), 1 I (int, meta), 2 C (uint, the slot's cache buffer; K region then V region).
struct kv_store_push {
  uint32_t rows, k_width, v_width, k_off, v_off, f16, cell_off, k_base, v_base; // bases in cache words
};

// attention.comp, one group (64 invocations) a (token, head): scores over the token's cells in position order in
// tiles of 64 with a running maximum (online softmax), out = sum p_j v_j / sum p_j.
// Bindings: 0 Q (float, arena), 1 I (int, meta), 2 C (float view of the slot's cache), 3 H (uint view, f16 caches),
// 4 O (float, arena).
struct attention_push {
  uint32_t rows, n_head, n_head_kv, head_dim, q_off, q_stride, o_off, o_stride;
  float scale;
  uint32_t window, non_causal, f16, k_base, v_base, k_stride, v_stride; // bases and strides in cache elements
  uint32_t pos_off, start_off, len_off, cells_off;             // meta int offsets
};

// copy_rows.comp: dst[dst_off + r * dst_stride + c * k + j] = src[src_off + (idx[idx_off + r] + j) * src_stride + c]
// for r < rows, c < width, j < k; rows whose idx is negative are left as they are. k = 1: output rows, input rows;
// k > 1: merge_rows. Bindings: 0 S (float: the arena, or the input-rows buffer), 1 I (int, meta), 2 D (float, arena).
struct copy_rows_push {
  uint32_t rows, width, k, src_off, src_stride, idx_off, dst_off, dst_stride;
};

// embed_interp.comp: out[t] = the bicubic sample of grid (cols x rows of width-vectors, vectors buffer at grid_off)
// at the token's (x, y) (meta floats gpos_off + t and gpos_off + n + t). One invocation a (token, channel).
// Bindings: 0 G (float, the vectors buffer), 1 M (float view of meta), 2 O (float, arena).
struct interp_push {
  uint32_t n, width, cols, rows, grid_off, gpos_off, out_off, has_pos;
};

} // namespace aglm_vk
