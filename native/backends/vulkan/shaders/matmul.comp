#version 450
// matmul_<type>: y[t][r] = sum_k W[r][k] * x[t][k] (+ b[r]) for one weight type (quants.glsl, a WTYPE_ define); the
// contract is vk-kernels.h's matmul_push. Two paths, chosen by n (uniform), with the dispatch of matmul_groups:
//   - n <= MM_TOK (decode): a matrix-vector product. A workgroup owns MM_ROWS weight rows and the n tokens; its MM_WG
//     invocations split the row into units (32 values), dequantize each unit once for every token, then sum their
//     partial dot products in shared memory (built with AGLM_SUBGROUP: subgroupAdd first).
//   - n > MM_TOK (prompts): a tiled product. A workgroup owns a tile of MT rows x MT tokens; per 32 values of k it
//     dequantizes the tile's weights and loads the tokens' values into shared memory (both in the unit's value order),
//     then each invocation accumulates 4 rows x 4 tokens from there.
// Workgroups: x and z = row groups (z * numWorkGroups.x + x, so m may pass 65535 row groups), y = token groups.
#extension GL_GOOGLE_include_directive : require
#ifdef AGLM_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define MM_WG 64u
#define MM_ROWS 2u
#define MM_TOK 8u
#define MT 32u // the tiled path's rows and tokens per workgroup, and values of k per step

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
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

shared float red[MM_ROWS * MM_TOK][MM_WG];
shared float ws[MT][MT + 1u], xs[MT][MT + 1u]; // the tiled path: [row][value], [token][value]

uint row_group() { return gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

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

// The tiled path. A step covers MT values of k: CU units of UNIT values (1 for the quantized types, 4 for the float
// types), each DQ_STEPS steps of DQ_NV vec4s, kept in that order (a unit's values need not be contiguous in the row).
#define CU (MT / UNIT)
#define NS (CU * DQ_STEPS) // unit steps per MT values: 2 or 4, shared by the two invocations that load a row or token

void matmul_tiled() {
  const uint r0 = row_group() * MT;
  if (r0 >= p.m) return;
  const uint t0 = gl_WorkGroupID.y * MT;
  const uint tid = gl_LocalInvocationID.x;
  // Loading: invocation pair lr loads weight row r0 + lr and token t0 + lr (clamped: their results are not written).
  const uint lr = tid >> 1, side = tid & 1u;
  const uint lrow = p.w_off + min(r0 + lr, p.m - 1u) * p.row_bytes;
  const uint lx = p.x_off + min(t0 + lr, p.n - 1u) * p.x_stride;
  // Computing: rows tr + 8i and tokens tt + 8j, i, j < 4.
  const uint tr = tid & 7u, tt = tid >> 3;
  float acc[4][4];
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

  const uint nc = p.k / MT;
  for (uint c = 0u; c < nc; c++) {
    for (uint us = side; us < NS; us += 2u) {
      const uint cu = us / DQ_STEPS, s = us % DQ_STEPS, u = c * CU + cu;
      const dq_unit st = dq_unit_init(lrow, u);
      vec4 v[DQ_NV];
      dq_step(st, s, v);
      for (uint j = 0u; j < DQ_NV; j++) {
        const uint o = (us * DQ_NV + j) * 4u, pos = lx + dq_pos(u, s, j);
        ws[lr][o] = v[j].x;
        ws[lr][o + 1u] = v[j].y;
        ws[lr][o + 2u] = v[j].z;
        ws[lr][o + 3u] = v[j].w;
        xs[lr][o] = x[pos];
        xs[lr][o + 1u] = x[pos + 1u];
        xs[lr][o + 2u] = x[pos + 2u];
        xs[lr][o + 3u] = x[pos + 3u];
      }
    }
    barrier();
    for (uint kk = 0u; kk < MT; kk++) {
      float a[4], bx[4];
      for (uint i = 0u; i < 4u; i++) a[i] = ws[tr + 8u * i][kk];
      for (uint j = 0u; j < 4u; j++) bx[j] = xs[tt + 8u * j][kk];
      for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * bx[j];
    }
    barrier();
  }
#ifdef DQ_FLOAT
  // Float types: the values past the last whole MT, straight from memory.
  for (uint kk = nc * MT; kk < p.k; kk++) {
    float a[4];
    for (uint i = 0u; i < 4u; i++) a[i] = dq_scalar(p.w_off + min(r0 + tr + 8u * i, p.m - 1u) * p.row_bytes, kk);
    for (uint j = 0u; j < 4u; j++) {
      const float xv = x[p.x_off + min(t0 + tt + 8u * j, p.n - 1u) * p.x_stride + kk];
      for (uint i = 0u; i < 4u; i++) acc[i][j] += a[i] * xv;
    }
  }
#endif
  for (uint i = 0u; i < 4u; i++) {
    const uint r = r0 + tr + 8u * i;
    if (r >= p.m) continue;
    float bias = 0.0;
    if (p.has_bias != 0u) bias = b[p.b_off + r];
    for (uint j = 0u; j < 4u; j++) {
      const uint t = t0 + tt + 8u * j;
      if (t < p.n) y[p.y_off + t * p.y_stride + r] = acc[i][j] + bias;
    }
  }
}

void main() {
  if (p.n > MM_TOK) matmul_tiled();
  else matvec();
}
