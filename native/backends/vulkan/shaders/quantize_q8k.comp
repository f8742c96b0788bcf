#version 450
// quantize_q8k: f32 activation rows into Q8_K super-blocks of 256 for the K-quant integer-dot matmuls
// (matmul_dot_k.comp), bit for bit the CPU reference's aglm_q8_K_block (ref-quants.cpp): max = the value of largest
// magnitude (the first in order; NaN never wins), iscale = -127 / max, q = round-half-even(iscale * x) clamped to
// [-127, 127] (NaN -> 0), bsums = the sums of each 16 q, d = 1 / iscale; an all-zero block is all zero bytes. Vulkan's
// division is not correctly rounded, so both divisions go through div_rn (as quantize_q8.comp). A block is 73 words,
// aglm_block_q8_K's bytes: the float d, 64 words of quants (4 a word, the lowest byte first), 8 words of int16 bsums.
// Push constants: vk-kernels.h quantize_q8_push (q_off, q_stride in words). One invocation per super-block; groups_2d
// over n * k / 256.
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Q { uint q[]; };
layout(push_constant) uniform P {
  uint x_off, x_stride, k, n, q_off, q_stride;
} p;

bool is_normal(float v) {
  const uint e = (floatBitsToUint(v) >> 23) & 0xffu;
  return e != 0u && e != 255u;
}

// a / b rounded to nearest, ties to even, for positive normal a and b with a normal quotient: 26 quotient bits of the
// 24-bit significands by restoring division, then rounded with the remainder as the sticky bit. Anything else (never
// met by activations whose largest magnitude is normal) falls back to the device's division.
float div_rn(float a, float b) {
  if (!is_normal(a) || !is_normal(b) || a < 0.0 || b < 0.0) return a / b;
  const uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
  const uint mb = (ub & 0x7fffffu) | 0x800000u;
  uint r = (ua & 0x7fffffu) | 0x800000u, qt = 0u;
  for (int i = 0; i < 26; i++) {
    qt <<= 1;
    if (r >= mb) {
      r -= mb;
      qt |= 1u;
    }
    r <<= 1;
  }
  int e = int(ua >> 23) - int(ub >> 23); // the quotient's exponent when the significands' ratio is in [1, 2)
  uint drop = 2u;
  if (qt < (1u << 25)) {
    drop = 1u;
    e -= 1;
  }
  uint m = qt >> drop;
  const uint rem = qt & ((1u << drop) - 1u), hf = 1u << (drop - 1u);
  if (rem > hf || (rem == hf && (r != 0u || (m & 1u) != 0u))) m += 1u;
  if (m == (1u << 24)) {
    m >>= 1;
    e += 1;
  }
  const int be = e + 127;
  if (be <= 0 || be >= 255) return a / b;
  return uintBitsToFloat((uint(be) << 23) | (m & 0x7fffffu));
}


// a / b correctly rounded for any signs (division rounds symmetrically).
float div_signed(float a, float b) {
  const float r = div_rn(abs(a), abs(b));
  return (a < 0.0) != (b < 0.0) ? -r : r;
}

// aglm_round_even: NaN -> 0, saturating at +-2^22, else the addition of 1.5 * 2^23 rounds (to nearest even).
int round_even(float v) {
  if ((floatBitsToUint(v) & 0x7fffffffu) > 0x7f800000u) return 0;
  if (v >= 4194304.0) return 4194304;
  if (v <= -4194304.0) return -4194304;
  precise float t = v + 12582912.0;
  precise float u = t - 12582912.0;
  return int(u);
}

void main() {
  const uint nb = p.k / 256u;
  const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u + gl_LocalInvocationID.x;
  if (idx >= p.n * nb) return;
  const uint t = idx / nb, b = idx % nb;
  const uint xa = p.x_off + t * p.x_stride + b * 256u;
  const uint qa = p.q_off + t * p.q_stride + b * 73u;
  float mx = 0.0, amax = 0.0;
  for (uint j = 0u; j < 256u; j++) {
    const float v = x[xa + j];
    const float a = abs(v);
    if (a > amax) {
      amax = a;
      mx = v;
    }
  }
  if (!(amax != 0.0)) {
    for (uint w = 0u; w < 73u; w++) q[qa + w] = 0u;
    return;
  }
  const float iscale = div_signed(-127.0, mx);
  for (uint g = 0u; g < 8u; g++) { // 32 values: 8 quant words, one bsums word
    int sums[2] = int[2](0, 0);
    for (uint w = 0u; w < 8u; w++) {
      uint word = 0u;
      for (uint i = 0u; i < 4u; i++) {
        precise float s = iscale * x[xa + 32u * g + 4u * w + i];
        const int qi = clamp(round_even(s), -127, 127);
        sums[w / 4u] += qi;
        word |= (uint(qi) & 0xffu) << (8u * i);
      }
      q[qa + 1u + 8u * g + w] = word;
    }
    q[qa + 65u + g] = (uint(sums[0]) & 0xffffu) | (uint(sums[1]) << 16);
  }
  q[qa] = floatBitsToUint(div_signed(1.0, iscale));
}
