#version 450
// quantize_q8: f32 activation rows into blocks of 32 int8 values for the integer-dot matmuls (matmul_dot.comp), as the
// CPU reference quantizes them (ref-types.cpp aglm_q8_0_block_quantize, ref-quants.cpp aglm_q8_1_block), bit for bit:
// amax = max |x|, d = amax / 127, id = 1 / d (0 when d is 0), q = roundf(x * id) (ties away from zero, clamped to
// [-127, 127], NaN -> 0), and for the Q8_1 pairing s = d * sum(q), d and s stored as IEEE halves. Vulkan's division
// is not correctly rounded, so d and id come from a long division of the significands (div_rn); the multiply is.
// The contract is vk-kernels.h's quantize_q8_push. A block is 9 words: d | s << 16, then the 32 quants, 4 a word
// (word 1 + j holds values 4j .. 4j + 3, the lowest byte first). One invocation per block; groups_2d over n * k / 32.
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

// IEEE half bits of f, round to nearest even (kernels/fp16.h aglm_fp32_to_fp16, step for step).
uint half_bits(float f) {
  const uint xb = floatBitsToUint(f);
  const uint sign = (xb >> 16) & 0x8000u;
  const uint ax = xb & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u | ((ax >> 13) & 0x3ffu);
  if (ax >= 0x47800000u) return sign | 0x7c00u;
  if (ax < 0x38800000u) {
    if (ax < 0x33000000u) return sign;
    const uint e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint h = m >> shift;
    const uint rem = m & ((1u << shift) - 1u), hf = 1u << (shift - 1u);
    if (rem > hf || (rem == hf && (h & 1u) != 0u)) h++;
    return sign | h;
  }
  uint h = (ax >> 13) - (112u << 10);
  const uint rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) h++;
  return sign | h;
}

// roundf(v) clamped to [-127, 127], NaN -> 0 (ref-types.cpp aglm_q8_round).
int q8_round(float v) {
  if ((floatBitsToUint(v) & 0x7fffffffu) > 0x7f800000u) return 0;
  if (v >= 127.0) return 127;
  if (v <= -127.0) return -127;
  float t = trunc(v);
  if (abs(v - t) >= 0.5) t += sign(v); // exact: |v| < 2^23
  return int(t);
}

void main() {
  const uint nb = p.k / 32u;
  const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u + gl_LocalInvocationID.x;
  if (idx >= p.n * nb) return;
  const uint t = idx / nb, b = idx % nb;
  const uint xa = p.x_off + t * p.x_stride + b * 32u;
  float v[32];
  float amax = 0.0;
  for (uint j = 0u; j < 32u; j++) {
    v[j] = x[xa + j];
    const float a = abs(v[j]);
    if (a > amax) amax = a;
  }
  const float d = amax == 0.0 ? 0.0 : div_rn(amax, 127.0);
  const float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
  const uint qa = p.q_off + t * p.q_stride + b * 9u;
  int sum = 0;
  for (uint w = 0u; w < 8u; w++) {
    uint word = 0u;
    for (uint i = 0u; i < 4u; i++) {
      precise float s = v[4u * w + i] * id;
      const int qi = q8_round(s);
      sum += qi;
      word |= (uint(qi) & 0xffu) << (8u * i);
    }
    q[qa + 1u + w] = word;
  }
  precise float s = float(sum) * d;
  q[qa] = half_bits(d) | (half_bits(s) << 16);
}
