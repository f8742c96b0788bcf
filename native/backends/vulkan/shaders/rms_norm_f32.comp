#version 450
// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w: one workgroup per row, the sum of squares reduced in shared memory.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
  uint n;     // row width
  uint rows;
  float eps;
} p;
shared float partial[256];

void main() {
  const uint row = gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint lid = gl_LocalInvocationID.x, base = row * p.n;
  float s = 0.0;
  for (uint i = lid; i < p.n; i += 256) s = fma(x[base + i], x[base + i], s);
  partial[lid] = s;
  barrier();
  for (uint step = 128; step > 0; step >>= 1) {
    if (lid < step) partial[lid] += partial[lid + step];
    barrier();
  }
  const float scale = 1.0 / sqrt(partial[0] / float(p.n) + p.eps);
  for (uint i = lid; i < p.n; i += 256) o[base + i] = x[base + i] * scale * w[i];
}
