#version 450
// out = silu(a) * b = a / (1 + exp(-a)) * b, elementwise (SwiGLU).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * gl_WorkGroupSize.x * gl_GlobalInvocationID.y;
  if (i >= p.n) return;
  const float v = a[i];
  o[i] = v / (1.0 + exp(-v)) * b[i];
}
