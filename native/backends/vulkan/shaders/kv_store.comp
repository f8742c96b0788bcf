#version 450
// The batch's keys and values into their KV cells (vk-ops.h, kv_store_push). One invocation a (token, cache word):
// f32 caches a word per value, f16 caches two values a word (packHalf2x16 rounds to nearest even, as the CPU does).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer I { int meta[]; };
layout(std430, binding = 2) writeonly buffer C { uint c[]; };
layout(push_constant) uniform P { uint rows, k_width, v_width, k_off, v_off, f16, cell_off, k_base, v_base; } p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  const uint per = p.f16 != 0u ? 2u : 1u;
  const uint kw = p.k_width / per, vw = p.v_width / per; // words a row
  if (i >= p.rows * (kw + vw)) return;
  const uint t = i / (kw + vw), w = i % (kw + vw);
  const uint cell = uint(meta[p.cell_off + t]);
  const bool is_k = w < kw;
  const uint col = is_k ? w : w - kw;
  const uint src = (is_k ? p.k_off + t * p.k_width : p.v_off + t * p.v_width) + col * per;
  const uint dst = is_k ? p.k_base + cell * kw + col : p.v_base + cell * vw + col;
  if (p.f16 != 0u) c[dst] = packHalf2x16(vec2(a[src], a[src + 1u]));
  else c[dst] = floatBitsToUint(a[src]);
}
