#version 450
// matmul_<type>: y[t][r] = sum_k W[r][k] * x[t][k] (+ b[r]) for one weight type (quants.glsl, a WTYPE_ define); the
// contract is vk-kernels.h's matmul_push. Two paths, chosen by n (uniform), with the dispatch of matmul_groups:
//   - n <= MM_TOK (decode): a matrix-vector product. A workgroup owns MM_ROWS weight rows and the n tokens; its MM_WG
//     invocations split the row into units (32 values), dequantize each unit once for every token, then sum their
//     partial dot products in shared memory (built with AGLM_SUBGROUP: subgroupAdd first).
//   - n > MM_TOK (prompts): a tiled product. A workgroup owns a tile of TR rows x TR tokens; per KT = 32 values of k
//     it dequantizes the tile's weights and loads the tokens' values into shared memory (both in the unit's value
//     order), then each invocation accumulates 4 rows x 4 tokens from there.
// Two more builds hold the tiled path alone (MM_TILE_ONLY; the host uses them for n > MM_TOK and k % 32 == 0, never for
// F32 or BF16 weights), with the tile in f16 (the products of two f16 values are exact in f32, the sums stay f32):
//   - AGLM_F16 (devices with shaderFloat16): the same 32 x 32 tile and 4 x 4 sums per invocation;
//   - AGLM_COOPMAT: a 64 x 64 tile, 128 invocations, the tile's products as cooperative matrix products (f16 inputs,
//     f32 sums) on the tensor cores of NVIDIA, AMD and Intel GPUs. Subgroups form a GR x (subgroups / GR) grid over the
//     tile; each owns BR x BC blocks of CM_M rows x CM_N tokens and steps k by CM_K. Two builds:
//     - with AGLM_COOPMAT_KHR: VK_KHR_cooperative_matrix, the shape and the grid as specialization constants that
//       the host picks from the device's configurations and subgroup size (16 x 16 x 16 with subgroups of 32 on
//       NVIDIA, 8 x 8 x 8 with subgroups of 8 on lavapipe, which runs it in the tests);
//     - with AGLM_COOPMAT_EMULATE: 16 x 16 x 16 products and subgroups of 32 (GR = 2, BR = BC = 2: the layout NVIDIA
//       GPUs get), the cooperative operations emulated with the same operands (element offsets, strides, layouts) by
//       groups of 32 invocations, so that layout's indexing runs on any device with shaderFloat16
//       (OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE=1).
// Workgroups: x and z = row groups (z * numWorkGroups.x + x, so m may pass 65535 row groups), y = token groups.
#extension GL_GOOGLE_include_directive : require
#if defined(AGLM_F16) || defined(AGLM_COOPMAT)
#define MM_TILE_ONLY 1
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#if defined(AGLM_COOPMAT_KHR)
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#elif defined(AGLM_COOPMAT) && !defined(AGLM_COOPMAT_EMULATE)
#error AGLM_COOPMAT needs AGLM_COOPMAT_KHR or AGLM_COOPMAT_EMULATE
#endif
#ifdef AGLM_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define MM_WG 64u
#define MM_ROWS 2u
#define MM_TOK 8u
#define KT 32u // the tiled path's values of k per step
#ifdef AGLM_COOPMAT
#define TR 64u // the tiled path's rows and tokens per workgroup
#define WG 128u
#define WG_SIZE 128
#else
#define TR 32u
#define WG 64u
#define WG_SIZE 64
#endif
#ifdef MM_TILE_ONLY
#define ST float16_t
#define LDS (KT + 8u) // a tile row's stride: 80 bytes keeps every 16 x 16 block 16-byte aligned
#else
#define ST float
#define LDS (KT + 1u)
#endif

layout(local_size_x = WG_SIZE, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer W { uint w[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer B { float b[]; };
layout(push_constant) uniform P {
  uint w_off, row_bytes, k, m, n;
  uint x_off, x_stride, y_off, y_stride;
  uint b_off, has_bias;
} p;

#include "quants.glsl"

#ifndef MM_TILE_ONLY
shared float red[MM_ROWS * MM_TOK][MM_WG];
#endif
shared ST ws[TR * LDS], xs[TR * LDS]; // the tiled path: [row][value], [token][value]

uint row_group() { return gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

#ifndef MM_TILE_ONLY
void matvec() {
  const uint r0 = row_group() * MM_ROWS;
  if (r0 >= p.m) return; // the whole workgroup: the last z slice's spare groups
  const uint nt = p.n; // 1 .. MM_TOK
  const uint tid = gl_LocalInvocationID.x;

  uint row[MM_ROWS]; // byte address of each row (rows past m repeat the last one; their sums are not written)
  for (uint r = 0u; r < MM_ROWS; r++) row[r] = p.w_off + min(r0 + r, p.m - 1u) * p.row_bytes;
  uint xb[MM_TOK];
  for (uint t = 0u; t < MM_TOK; t++) xb[t] = p.x_off + min(t, nt - 1u) * p.x_stride;

  float acc[MM_ROWS][MM_TOK];
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) acc[r][t] = 0.0;

  const uint nu = p.k / UNIT;
  for (uint u = tid; u < nu; u += MM_WG) {
    dq_unit st[MM_ROWS];
    for (uint r = 0u; r < MM_ROWS; r++) st[r] = dq_unit_init(row[r], u);
    for (uint s = 0u; s < DQ_STEPS; s++) {
      vec4 wv[MM_ROWS][DQ_NV];
      for (uint r = 0u; r < MM_ROWS; r++) dq_step(st[r], s, wv[r]);
      for (uint j = 0u; j < DQ_NV; j++) {
        const uint pos = dq_pos(u, s, j);
        for (uint t = 0u; t < MM_TOK; t++) {
          if (t < nt) {
            const uint i = xb[t] + pos;
            const vec4 xv = vec4(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
            for (uint r = 0u; r < MM_ROWS; r++) acc[r][t] += dot(wv[r][j], xv);
          }
        }
      }
    }
  }
#ifdef DQ_FLOAT
  // Float types: the values past the last whole unit of 8, one per invocation.
  for (uint i = nu * UNIT + tid; i < p.k; i += MM_WG) {
    float wr[MM_ROWS];
    for (uint r = 0u; r < MM_ROWS; r++) wr[r] = dq_scalar(row[r], i);
    for (uint t = 0u; t < MM_TOK; t++)
      if (t < nt)
        for (uint r = 0u; r < MM_ROWS; r++) acc[r][t] += wr[r] * x[xb[t] + i];
  }
#endif

#ifdef AGLM_SUBGROUP
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) {
      const float v = subgroupAdd(acc[r][t]);
      if (subgroupElect()) red[r * MM_TOK + t][gl_SubgroupID] = v;
    }
  barrier();
  if (tid < MM_ROWS * MM_TOK) {
    float v = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; g++) v += red[tid][g];
    red[tid][0] = v;
  }
#else
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) red[r * MM_TOK + t][tid] = acc[r][t];
  barrier();
  for (uint h = MM_WG / 2u; h > 0u; h >>= 1) {
    if (tid < h)
      for (uint q = 0u; q < MM_ROWS * MM_TOK; q++) red[q][tid] += red[q][tid + h];
    barrier();
  }
#endif
  if (tid < MM_ROWS * MM_TOK) {
    const uint r = r0 + tid / MM_TOK, t = tid % MM_TOK;
    if (r < p.m && t < nt) {
      float v = red[tid][0];
      if (p.has_bias != 0u) v += b[p.b_off + r];
      y[p.y_off + t * p.y_stride + r] = v;
    }
  }
}
#endif

// The tiled path. A step covers KT values of k: CU units of UNIT values (1 for the quantized types, 4 for the float
// types), each DQ_STEPS steps of DQ_NV vec4s, kept in that order (a unit's values need not be contiguous in the row).
// Invocations take (row, unit step) pairs: pair q loads unit step q % NS of weight row r0 + q / NS and the same values
// of token t0 + q / NS (both clamped: their results are not written).
#define CU (KT / UNIT)
#define NS (CU * DQ_STEPS) // unit steps per KT values: 2 or 4

void load_tile(uint r0, uint t0, uint c) {
  for (uint q = gl_LocalInvocationID.x; q < TR * NS; q += WG) {
    const uint lr = q / NS, us = q % NS;
    const uint lrow = p.w_off + min(r0 + lr, p.m - 1u) * p.row_bytes;
    const uint lx = p.x_off + min(t0 + lr, p.n - 1u) * p.x_stride;
    const uint cu = us / DQ_STEPS, s = us % DQ_STEPS, u = c * CU + cu;
    const dq_unit st = dq_unit_init(lrow, u);
    vec4 v[DQ_NV];
    dq_step(st, s, v);
    for (uint j = 0u; j < DQ_NV; j++) {
      const uint o = lr * LDS + (us * DQ_NV + j) * 4u, pos = lx + dq_pos(u, s, j);
      ws[o] = ST(v[j].x);
      ws[o + 1u] = ST(v[j].y);
      ws[o + 2u] = ST(v[j].z);
      ws[o + 3u] = ST(v[j].w);
      xs[o] = ST(x[pos]);
      xs[o + 1u] = ST(x[pos + 1u]);
      xs[o + 2u] = ST(x[pos + 2u]);
      xs[o + 3u] = ST(x[pos + 3u]);
    }
  }
}

void store_out(uint r, uint t, float v) {
  if (r >= p.m || t >= p.n) return;
  if (p.has_bias != 0u) v += b[p.b_off + r];
  y[p.y_off + t * p.y_stride + r] = v;
}

#ifdef AGLM_COOPMAT
// Subgroup g owns rows wm .. + BR CM_M (wm = (g % GR) BR CM_M) and tokens wn .. + BC CM_N (wn = (g / GR) BC CM_N) of
// the tile as BR x BC products of CM_M x CM_N x CM_K (f16 inputs, f32 sums); A (weights) is read row-major from ws,
// B (tokens) column-major from xs; the sums go column-major through shared memory ([token][row]) to the output.
shared float cs[TR * TR];

#if defined(AGLM_COOPMAT_KHR)
layout(constant_id = 0) const uint CM_M = 16;
layout(constant_id = 1) const uint CM_N = 16;
layout(constant_id = 2) const uint CM_K = 16;
layout(constant_id = 3) const uint GR = 2;
layout(constant_id = 4) const uint BR = 2;
layout(constant_id = 5) const uint BC = 2;
layout(constant_id = 6) const uint NSG = 4; // the subgroups the grid was made for: 128 / the device's subgroup size
#define ACC_T coopmat<float, gl_ScopeSubgroup, CM_M, CM_N, gl_MatrixUseAccumulator>
#define A_T coopmat<float16_t, gl_ScopeSubgroup, CM_M, CM_K, gl_MatrixUseA>
#define B_T coopmat<float16_t, gl_ScopeSubgroup, CM_K, CM_N, gl_MatrixUseB>
#define ACC_ZERO ACC_T(0.0)
#define LOAD_A(f, el, stride) coopMatLoad(f, ws, el, stride, gl_CooperativeMatrixLayoutRowMajor)
#define LOAD_B(f, el, stride) coopMatLoad(f, xs, el, stride, gl_CooperativeMatrixLayoutColumnMajor)
#define MUL_ADD(a, b, c) coopMatMulAdd(a, b, c)
#define STORE_C(f, el, stride) coopMatStore(f, cs, el, stride, gl_CooperativeMatrixLayoutColumnMajor)
#define SUBGROUP_ID gl_SubgroupID
#else
#define CM_M 16u
#define CM_N 16u
#define CM_K 16u
#define GR 2u
#define BR 2u
#define BC 2u
// A 16 x 16 operand is where it would be loaded from (ws for A, xs for B: element offset, stride, column-major); an
// accumulator is 8 values a lane of 32 (element e = lane + 32 q: row e / 16, column e % 16).
struct frag {
  uint el, stride;
  bool col;
};
struct acc8 {
  float v[8];
};
#define ACC_T acc8
#define A_T frag
#define B_T frag
#define ACC_ZERO acc8(float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
#define LOAD_A(f, e, s) f = frag(e, s, false)
#define LOAD_B(f, e, s) f = frag(e, s, true)
#define MUL_ADD(a, b, c) emu_mul_add(a, b, c)
#define STORE_C(f, e, s) emu_store(f, e, s, true)
#define SUBGROUP_ID (gl_LocalInvocationID.x / 32u)
uint at(frag f, uint r, uint c) { return f.el + (f.col ? c * f.stride + r : r * f.stride + c); }
acc8 emu_mul_add(frag a, frag b, acc8 c) {
  for (uint q = 0u; q < 8u; q++) {
    const uint e = gl_LocalInvocationID.x % 32u + 32u * q, r = e / 16u, cc = e % 16u;
    for (uint k = 0u; k < 16u; k++) c.v[q] += float(ws[at(a, r, k)]) * float(xs[at(b, k, cc)]);
  }
  return c;
}
void emu_store(acc8 f, uint el, uint stride, bool col) {
  for (uint q = 0u; q < 8u; q++) {
    const uint e = gl_LocalInvocationID.x % 32u + 32u * q;
    cs[at(frag(el, stride, col), e / 16u, e % 16u)] = f.v[q];
  }
}
#endif

void matmul_tiled() {
  const uint r0 = row_group() * TR;
  if (r0 >= p.m) return;
  const uint t0 = gl_WorkGroupID.y * TR;
#ifdef AGLM_COOPMAT_KHR
  // Subgroups of another size than the host planned for would index past the tile: the workgroup (gl_NumSubgroups
  // is uniform) writes nothing instead, so the self-check fails and the path is turned off.
  if (gl_NumSubgroups != NSG) return;
#endif
  const uint wm = (SUBGROUP_ID % GR) * (BR * CM_M), wn = (SUBGROUP_ID / GR) * (BC * CM_N);
  ACC_T acc[BR * BC];
  for (uint i = 0u; i < BR * BC; i++) acc[i] = ACC_ZERO;
  const uint nc = p.k / KT;
  for (uint c = 0u; c < nc; c++) {
    load_tile(r0, t0, c);
    barrier();
    for (uint kk = 0u; kk < KT; kk += CM_K) {
      A_T fa[BR];
      B_T fb[BC];
      for (uint i = 0u; i < BR; i++) LOAD_A(fa[i], (wm + CM_M * i) * LDS + kk, LDS);
      for (uint j = 0u; j < BC; j++) LOAD_B(fb[j], (wn + CM_N * j) * LDS + kk, LDS);
      for (uint i = 0u; i < BR; i++)
        for (uint j = 0u; j < BC; j++) acc[i * BC + j] = MUL_ADD(fa[i], fb[j], acc[i * BC + j]);
    }
    barrier();
  }
  for (uint i = 0u; i < BR; i++)
    for (uint j = 0u; j < BC; j++) STORE_C(acc[i * BC + j], (wn + CM_N * j) * TR + wm + CM_M * i, TR);
  barrier();
  for (uint q = gl_LocalInvocationID.x; q < TR * TR; q += WG) store_out(r0 + q % TR, t0 + q / TR, cs[q]);
}
#else
// Invocation (tr, tt) accumulates rows tr + 8i and tokens tt + 8j, i, j < 4 (f32 sums of the tile's values; an f16
// tile's products are exact in f32).
void matmul_tiled() {
  const uint r0 = row_group() * TR;
  if (r0 >= p.m) return;
  const uint t0 = gl_WorkGroupID.y * TR;
  const uint tid = gl_LocalInvocationID.x;
  const uint tr = tid & 7u, tt = tid >> 3;
  float acc[4][4];
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

  const uint nc = p.k / KT;
  for (uint c = 0u; c < nc; c++) {
    load_tile(r0, t0, c);
    barrier();
    for (uint kk = 0u; kk < KT; kk++) {
      float a[4], bx[4];
      for (uint i = 0u; i < 4u; i++) a[i] = float(ws[(tr + 8u * i) * LDS + kk]);
      for (uint j = 0u; j < 4u; j++) bx[j] = float(xs[(tt + 8u * j) * LDS + kk]);
      for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * bx[j];
    }
    barrier();
  }
#if defined(DQ_FLOAT) && !defined(MM_TILE_ONLY)
  // Float types: the values past the last whole KT, straight from memory (the tile-only builds get k % KT == 0).
  for (uint kk = nc * KT; kk < p.k; kk++) {
    float a[4];
    for (uint i = 0u; i < 4u; i++) a[i] = dq_scalar(p.w_off + min(r0 + tr + 8u * i, p.m - 1u) * p.row_bytes, kk);
    for (uint j = 0u; j < 4u; j++) {
      const float xv = x[p.x_off + min(t0 + tt + 8u * j, p.n - 1u) * p.x_stride + kk];
      for (uint i = 0u; i < 4u; i++) acc[i][j] += a[i] * xv;
    }
  }
#endif
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++) store_out(r0 + tr + 8u * i, t0 + tt + 8u * j, acc[i][j]);
}
#endif

void main() {
#ifdef MM_TILE_ONLY
  matmul_tiled();
#else
  if (p.n > MM_TOK) matmul_tiled();
  else matvec();
#endif
}
