#version 450
// Rotary position embedding (vk-ops.h, rope_push): head h of token t, pair i < n_rot/2 turned by the token's table
// entry (cos, sin) at tab_off + t * n_rot + 2i; pairs (2i, 2i+1) (normal) or (i, i + n_rot/2) (neox and the
// multi-section modes). Elements past n_rot are copied. One invocation a (token, head, pair-or-element) slot of
// head_dim/2 + (head_dim - n_rot) ... laid out as head_dim slots a head: slot s < n_rot/2 rotates pair s, slots
// n_rot .. head_dim-1 copy element s; the others idle. Safe in place (each slot reads what it writes).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer T { float tab[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint rows, heads, head_dim, n_rot, neox, in_off, out_off, tab_off; } p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  const uint hd = p.head_dim;
  if (i >= p.rows * p.heads * hd) return;
  const uint s = i % hd, th = i / hd, h = th % p.heads, t = th / p.heads;
  const uint base = t * p.heads * hd + h * hd;
  const uint half_rot = p.n_rot / 2u;
  if (s < half_rot) {
    const uint i0 = p.neox != 0u ? s : 2u * s, i1 = p.neox != 0u ? s + half_rot : 2u * s + 1u;
    const float c = tab[p.tab_off + t * p.n_rot + 2u * s], sn = tab[p.tab_off + t * p.n_rot + 2u * s + 1u];
    const float x0 = a[p.in_off + base + i0], x1 = a[p.in_off + base + i1];
    o[p.out_off + base + i0] = x0 * c - x1 * sn;
    o[p.out_off + base + i1] = x0 * sn + x1 * c;
  } else if (s >= p.n_rot) {
    o[p.out_off + base + s] = a[p.in_off + base + s];
  }
}
