#version 450
// Learned position tables resized to an image's patch grid (vk-ops.h, interp_push): the bicubic sample (Keys a =
// -0.75, taps clamped to the edge; the 4 taps along x combined for each of 4 rows, then along y, as the reference)
// of the grid at the token's source coordinates. One invocation a (token, channel).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer M { float meta[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n, width, cols, rows, grid_off, gpos_off, out_off, has_pos; } p;

float weight(float d) {
  const float A = -0.75;
  d = abs(d);
  if (d < 1.0) return ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0;
  if (d < 2.0) return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A;
  return 0.0;
}

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (i >= p.n * p.width) return;
  const uint t = i / p.width, c = i % p.width;
  const float sx = p.has_pos != 0u ? meta[p.gpos_off + t] : 0.0, sy = p.has_pos != 0u ? meta[p.gpos_off + p.n + t] : 0.0;
  const float fx = floor(sx), fy = floor(sy), tx = sx - fx, ty = sy - fy;
  const int x0 = int(fx), y0 = int(fy);
  const float wx[4] = float[4](weight(tx + 1.0), weight(tx), weight(1.0 - tx), weight(2.0 - tx));
  const float wy[4] = float[4](weight(ty + 1.0), weight(ty), weight(1.0 - ty), weight(2.0 - ty));
  float acc = 0.0;
  for (int dy = 0; dy < 4; dy++) {
    const int y = clamp(y0 - 1 + dy, 0, int(p.rows) - 1);
    float line = 0.0;
    for (int dx = 0; dx < 4; dx++) {
      const int x = clamp(x0 - 1 + dx, 0, int(p.cols) - 1);
      line += wx[dx] * g[p.grid_off + (uint(y) * p.cols + uint(x)) * p.width + c];
    }
    acc += wy[dy] * line;
  }
  o[p.out_off + t * p.width + c] = acc;
}
