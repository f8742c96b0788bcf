#version 450
// out[t][r] = sum_k x[t][k] * w[r][k] (+ b[r] when has_bias): the F32 matmul, one invocation per output element,
// summed in k order as the CPU reference does (the specification for every kernel).
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
  uint k;        // row length
  uint n;        // weight rows (outputs per token)
  uint t;        // tokens
  uint has_bias;
} p;

void main() {
  const uint r = gl_GlobalInvocationID.x;
  const uint tok = gl_GlobalInvocationID.y;
  if (r >= p.n || tok >= p.t) return;
  float acc = 0.0;
  const uint xo = tok * p.k, wo = r * p.k;
  for (uint i = 0; i < p.k; i++) acc = fma(x[xo + i], w[wo + i], acc);
  if (p.has_bias != 0) acc += b[r];
  o[tok * p.n + r] = acc;
}
