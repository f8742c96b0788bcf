#version 450
// Row copies by index (vk-ops.h, copy_rows_push): dst row r, column c * k + j = src row idx[r] + j, column c. Output
// rows and input rows (k = 1), patch merges (k > 1). Rows with a negative index are skipped. One invocation a
// destination element.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer S { float s[]; };
layout(std430, binding = 1) readonly buffer I { int meta[]; };
layout(std430, binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform P { uint rows, width, k, src_off, src_stride, idx_off, dst_off, dst_stride; } p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  const uint per_row = p.width * p.k;
  if (i >= p.rows * per_row) return;
  const uint r = i / per_row, e = i % per_row, c = e / p.k, j = e % p.k;
  const int src_row = meta[p.idx_off + r];
  if (src_row < 0) return;
  d[p.dst_off + r * p.dst_stride + e] = s[p.src_off + (uint(src_row) + j) * p.src_stride + c];
}
