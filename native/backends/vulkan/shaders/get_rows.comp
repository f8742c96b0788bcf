#version 450
// get_rows_<type>: y[t][c] = W[idx[t]][c], each gathered row dequantized to f32 exactly as the CPU reference does (the
// embedding lookup; learned position tables). The contract is vk-kernels.h's get_rows_push. One invocation per unit of
// a row (quants.glsl: 32 values; 8 for the float types); dispatch (vk-kernels.h get_rows_groups): x = units / 64,
// y, z = tokens (z * numWorkGroups.y + y). Row indices are trusted: the caller checks them against the table's rows.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer W { uint w[]; };
layout(std430, binding = 1) readonly buffer IDX { int idx[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint w_off, row_bytes, k, n;
  uint idx_off, y_off, y_stride;
} p;

#include "quants.glsl"

void main() {
  const uint t = gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y;
  const uint u = gl_GlobalInvocationID.x;
  if (t >= p.n || u * UNIT >= p.k) return;
  const uint row = p.w_off + uint(idx[p.idx_off + t]) * p.row_bytes;
  const uint yb = p.y_off + t * p.y_stride;
#ifdef DQ_FLOAT
  if (u * UNIT + UNIT > p.k) { // the partial last unit of a float row
    for (uint i = u * UNIT; i < p.k; i++) y[yb + i] = dq_scalar(row, i);
    return;
  }
#endif
  const dq_unit st = dq_unit_init(row, u);
  for (uint s = 0u; s < DQ_STEPS; s++) {
    vec4 v[DQ_NV];
    dq_step(st, s, v);
    for (uint j = 0u; j < DQ_NV; j++) {
      const uint i = yb + dq_pos(u, s, j);
      y[i] = v[j].x;
      y[i + 1u] = v[j].y;
      y[i + 2u] = v[j].z;
      y[i + 3u] = v[j].w;
    }
  }
}
