#version 450
// Element-wise ops over [rows][width] values (vk-ops.h, eltwise_push): add, mul, silu_mul, gelu (tanh form, computed
// as x sigmoid(2u) like the reference), gelu_erf, add_vector. One invocation an element.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint mode, n, width, a_off, b_off, o_off, v_off; } p;

// erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7), as the CPU's SIMD kernels use.
float erf_as(float x) {
  const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
  const float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return x < 0.0 ? -y : y;
}

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  const float x = a[p.a_off + i];
  float y;
  switch (p.mode) {
    case 0u: y = x + a[p.b_off + i]; break;
    case 1u: y = x * a[p.b_off + i]; break;
    case 2u: y = x / (1.0 + exp(-x)) * a[p.b_off + i]; break;
    case 3u: {
      const float u = 0.7978845608028654 * x * (1.0 + 0.044715 * x * x);
      y = x / (1.0 + exp(-2.0 * u));
      break;
    }
    case 4u: y = 0.5 * x * (1.0 + erf_as(x * 0.70710678118654752)); break;
    default: y = x + v[p.v_off + i % p.width]; break;
  }
  o[p.o_off + i] = y;
}
