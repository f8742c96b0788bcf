#version 450
// Attention of one (token, head) per group (vk-ops.h, attention_push) over the token's KV cells in position order:
// causal entries [max(0, pos - window + 1), pos] of its sequence's cell list, or the whole list (non-causal). The
// cells are taken in tiles of 64, one score an invocation, with a running maximum and sum (online softmax); each
// invocation accumulates head_dim / 64 output dimensions. Keys and values in f32 or f16 (two a word).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer I { int meta[]; };
layout(std430, binding = 2) readonly buffer C { float c[]; };
layout(std430, binding = 3) readonly buffer H { uint h[]; };
layout(std430, binding = 4) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
  uint rows, n_head, n_head_kv, head_dim, q_off, q_stride, o_off, o_stride;
  float scale;
  uint window, non_causal, f16, k_base, v_base, k_stride, v_stride;
  uint pos_off, start_off, len_off, cells_off;
} p;

const uint MAX_HD = 256u;
shared float qs[MAX_HD];
shared float ps[64];
shared uint rows_s[64];

float kv(uint e) {
  if (p.f16 == 0u) return c[e];
  const vec2 v = unpackHalf2x16(h[e >> 1]);
  return (e & 1u) != 0u ? v.y : v.x;
}

void main() {
  const uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (g >= p.rows * p.n_head) return;
  const uint t = g / p.n_head, head = g % p.n_head, l = gl_LocalInvocationID.x, hd = p.head_dim;
  const uint group = p.n_head / p.n_head_kv, kvh = head / group;
  for (uint d = l; d < hd; d += 64u) qs[d] = q[p.q_off + t * p.q_stride + head * hd + d];
  const int pos = meta[p.pos_off + t];
  int first = 0, n_kv;
  if (p.non_causal != 0u) {
    n_kv = meta[p.len_off + t];
  } else {
    if (p.window > 0u) first = max(0, pos - int(p.window) + 1);
    n_kv = pos + 1 - first;
  }
  const uint list = uint(meta[p.start_off + t] + first) + p.cells_off;
  float m = -1.0 / 0.0, lsum = 0.0;
  float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
  barrier();
  for (int j0 = 0; j0 < n_kv; j0 += 64) {
    const int j = j0 + int(l);
    float s = -1.0 / 0.0;
    if (j < n_kv) {
      const uint row = uint(meta[list + uint(j)]);
      rows_s[l] = row;
      const uint kb = p.k_base + row * p.k_stride + kvh * hd;
      float dot = 0.0;
      for (uint d = 0u; d < hd; d++) dot += qs[d] * kv(kb + d);
      s = dot * p.scale;
    }
    ps[l] = s;
    barrier();
    const int count = min(64, n_kv - j0);
    float tmax = m;
    for (int k = 0; k < count; k++) tmax = max(tmax, ps[k]);
    barrier();
    if (j < n_kv) ps[l] = exp(s - tmax);
    barrier();
    const float factor = exp(m - tmax); // 0 on the first tile (m = -inf)
    float tsum = 0.0;
    for (int k = 0; k < count; k++) tsum += ps[k];
    lsum = lsum * factor + tsum;
    for (uint a = 0u; a < 4u; a++) {
      const uint d = l + a * 64u;
      if (d >= hd) break;
      float v = acc[a] * factor;
      for (int k = 0; k < count; k++) v += ps[k] * kv(p.v_base + rows_s[k] * p.v_stride + kvh * hd + d);
      acc[a] = v;
    }
    m = tmax;
    barrier();
  }
  const float inv = n_kv > 0 ? 1.0 / lsum : 0.0;
  for (uint a = 0u; a < 4u; a++) {
    const uint d = l + a * 64u;
    if (d >= hd) break;
    o[p.o_off + t * p.o_stride + head * hd + d] = acc[a] * inv;
  }
}
