#version 450
// rms_norm (mode 0) and layer_norm (mode 1) of one row per group (vk-ops.h, norm_push): the sums reduced in shared
// memory, then y = (x * scale) * w (+ b) as the reference writes it.
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint mode, width, rows, in_off, out_off, w_off, has_w, b_off, has_b; float eps; } p;

shared float red[128];

float reduce_sum(float x) {
  const uint l = gl_LocalInvocationID.x;
  red[l] = x;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (l < s) red[l] += red[l + s];
    barrier();
  }
  const float r = red[0];
  barrier();
  return r;
}

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint l = gl_LocalInvocationID.x, n = p.width;
  const uint base = p.in_off + row * n;
  float mean = 0.0, scale;
  if (p.mode == 0u) {
    float s = 0.0;
    for (uint i = l; i < n; i += 128u) s += a[base + i] * a[base + i];
    scale = 1.0 / sqrt(reduce_sum(s) / float(n) + p.eps);
  } else {
    float s = 0.0;
    for (uint i = l; i < n; i += 128u) s += a[base + i];
    mean = reduce_sum(s) / float(n);
    float s2 = 0.0;
    for (uint i = l; i < n; i += 128u) {
      const float d = a[base + i] - mean;
      s2 += d * d;
    }
    scale = 1.0 / sqrt(reduce_sum(s2) / float(n) + p.eps);
  }
  const uint ob = p.out_off + row * n;
  for (uint i = l; i < n; i += 128u) {
    float y = (a[base + i] - mean) * scale;
    if (p.has_w != 0u) y *= v[p.w_off + i];
    if (p.has_b != 0u) y += v[p.b_off + i];
    o[ob + i] = y;
  }
}
