// Weight-type decoding for the Vulkan kernels: the GGUF block layouts of native/kernels/kernels.h read from the 32-bit
// words of `uint w[]` at any byte offset (little-endian; no 8/16-bit storage needed), one type per build, chosen by a
// define (WTYPE_F32, WTYPE_F16, WTYPE_BF16, WTYPE_Q8_0, WTYPE_Q4_0, WTYPE_Q4_1, WTYPE_Q5_0, WTYPE_Q5_1, WTYPE_Q4_K,
// WTYPE_Q5_K, WTYPE_Q6_K). Values are computed with the reference's float operations in its order (ref-types.cpp,
// ref-quants.cpp) and marked `precise` (no fused multiply-add), so a dequantized value equals the CPU's bit for bit.
//
// A row is walked in units: UNIT values that one invocation decodes together (32 for the quantized types, 8 for the
// float types). Unit u of a row is read as DQ_STEPS steps of DQ_NV vec4s; vec4 j of step s holds the 4 consecutive row
// values that start at dq_pos(u, s, j). The units of a row cover it exactly once (float types: a row whose length is
// not a multiple of 8 ends in a partial unit, read value by value with dq_scalar).
//
// The includer declares `layout(std430, binding = 0) readonly buffer W { uint w[]; };` first. A read may touch the
// word holding the last byte of a row, never a word past it (buffers are whole words).

// ---- bytes, halves and words at any byte address ------------------------------------------------------------------

uint ld_u8(uint a) { return (w[a >> 2] >> ((a & 3u) * 8u)) & 0xffu; }

uint ld_u16(uint a) {
  const uint s = (a & 3u) * 8u;
  uint v = w[a >> 2] >> s;
  if (s == 24u) v |= w[(a >> 2) + 1u] << 8;
  return v & 0xffffu;
}

uint ld_u32(uint a) {
  const uint s = (a & 3u) * 8u;
  const uint lo = w[a >> 2];
  if (s == 0u) return lo;
  return (lo >> s) | (w[(a >> 2) + 1u] << (32u - s));
}

float half_at(uint a) { return unpackHalf2x16(ld_u16(a)).x; }

// The 4 bytes of a word, as unsigned values / as int8 (sign-extended).
uvec4 bytes4(uint v) { return (uvec4(v) >> uvec4(0u, 8u, 16u, 24u)) & 0xffu; }
ivec4 sbytes4(uint v) { return ivec4(uvec4(v) << uvec4(24u, 16u, 8u, 0u)) >> 24; }
// The low / high nibbles of the 4 bytes of a word.
uvec4 lo_nibbles(uint v) { return (uvec4(v) >> uvec4(0u, 8u, 16u, 24u)) & 0xfu; }
uvec4 hi_nibbles(uint v) { return (uvec4(v) >> uvec4(4u, 12u, 20u, 28u)) & 0xfu; }
// Bits b, b+1, b+2, b+3 of a word, each as 0 or 1.
uvec4 bits4(uint v, uint b) { return (uvec4(v) >> (uvec4(b) + uvec4(0u, 1u, 2u, 3u))) & 1u; }

// ---- the types ------------------------------------------------------------------------------------------------------

#if defined(WTYPE_F32) || defined(WTYPE_F16) || defined(WTYPE_BF16)
#define QK 1u
#define DQ_FLOAT 1
#define UNIT 8u
#define DQ_STEPS 1
#define DQ_NV 2
#if defined(WTYPE_F32)
#define QB 4u
#elif defined(WTYPE_F16) || defined(WTYPE_BF16)
#define QB 2u
#endif

struct dq_unit { uint a; };
dq_unit dq_unit_init(uint row, uint u) { return dq_unit(row + u * UNIT * QB); }
uint dq_pos(uint u, uint s, uint j) { return u * UNIT + 4u * j; }

#if defined(WTYPE_F32)
float dq_scalar(uint row, uint i) { return uintBitsToFloat(ld_u32(row + 4u * i)); }
void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
  for (uint j = 0u; j < 2u; j++) {
    const uint a = st.a + 16u * j;
    v[j] = uintBitsToFloat(uvec4(ld_u32(a), ld_u32(a + 4u), ld_u32(a + 8u), ld_u32(a + 12u)));
  }
}
#elif defined(WTYPE_F16)
float dq_scalar(uint row, uint i) { return half_at(row + 2u * i); }
void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
  for (uint j = 0u; j < 2u; j++) {
    const uint a = st.a + 8u * j;
    v[j] = vec4(unpackHalf2x16(ld_u32(a)), unpackHalf2x16(ld_u32(a + 4u)));
  }
}
#else // BF16: the top half of an IEEE float
float dq_scalar(uint row, uint i) { return uintBitsToFloat(ld_u16(row + 2u * i) << 16); }
void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
  for (uint j = 0u; j < 2u; j++) {
    const uint a = ld_u32(st.a + 8u * j), b = ld_u32(st.a + 8u * j + 4u);
    v[j] = uintBitsToFloat(uvec4(a << 16, a & 0xffff0000u, b << 16, b & 0xffff0000u));
  }
}
#endif

#elif defined(WTYPE_Q8_0) || defined(WTYPE_Q4_0) || defined(WTYPE_Q4_1) || defined(WTYPE_Q5_0) || defined(WTYPE_Q5_1)
// Blocks of 32: one unit is one block. Step s (of 4) reads quant bytes 4s..4s+3, which hold values 4s..4s+3 and (the
// nibble types: high nibbles; Q8_0: the bytes 16 further) values 16+4s..16+4s+3.
#define QK 32u
#define UNIT 32u
#define DQ_STEPS 4
#define DQ_NV 2
#if defined(WTYPE_Q8_0)
#define QB 34u
#define QS_AT 2u
#elif defined(WTYPE_Q4_0)
#define QB 18u
#define QS_AT 2u
#elif defined(WTYPE_Q4_1)
#define QB 20u
#define QS_AT 4u
#elif defined(WTYPE_Q5_0)
#define QB 22u
#define QS_AT 6u
#else // Q5_1
#define QB 24u
#define QS_AT 8u
#endif

struct dq_unit { uint a; float d, m; uint qh; };
dq_unit dq_unit_init(uint row, uint u) {
  const uint a = row + u * QB;
  dq_unit st;
  st.a = a;
#if defined(WTYPE_Q4_1) || defined(WTYPE_Q5_1)
  const vec2 dm = unpackHalf2x16(ld_u32(a));
  st.d = dm.x;
  st.m = dm.y;
#else
  st.d = half_at(a);
  st.m = 0.0;
#endif
#if defined(WTYPE_Q5_0)
  st.qh = ld_u32(a + 2u);
#elif defined(WTYPE_Q5_1)
  st.qh = ld_u32(a + 4u);
#else
  st.qh = 0u;
#endif
  return st;
}
uint dq_pos(uint u, uint s, uint j) { return u * 32u + 4u * s + 16u * j; }

void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
#if defined(WTYPE_Q8_0)
  precise vec4 lo = vec4(sbytes4(ld_u32(st.a + QS_AT + 4u * s))) * st.d;
  precise vec4 hi = vec4(sbytes4(ld_u32(st.a + QS_AT + 16u + 4u * s))) * st.d;
#else
  const uint q = ld_u32(st.a + QS_AT + 4u * s);
  uvec4 ql = lo_nibbles(q), qu = hi_nibbles(q);
#if defined(WTYPE_Q5_0) || defined(WTYPE_Q5_1)
  ql |= bits4(st.qh, 4u * s) << 4;
  qu |= bits4(st.qh, 16u + 4u * s) << 4;
#endif
#if defined(WTYPE_Q4_0)
  precise vec4 lo = vec4(ivec4(ql) - 8) * st.d;
  precise vec4 hi = vec4(ivec4(qu) - 8) * st.d;
#elif defined(WTYPE_Q5_0)
  precise vec4 lo = vec4(ivec4(ql) - 16) * st.d;
  precise vec4 hi = vec4(ivec4(qu) - 16) * st.d;
#else // Q4_1, Q5_1: q * d + m
  precise vec4 lo = vec4(ql) * st.d + st.m;
  precise vec4 hi = vec4(qu) * st.d + st.m;
#endif
#endif
  v[0] = lo;
  v[1] = hi;
}

#elif defined(WTYPE_Q4_K) || defined(WTYPE_Q5_K)
// Super-blocks of 256 in 8 units of 32. Unit uu = 2c + h of a super-block takes quant bytes 32c + 16h .. +15, whose
// low nibbles are values 64c + 16h + l (sub-block 2c) and high nibbles values 64c + 32 + 16h + l (sub-block 2c+1),
// l < 16; step s (of 4) reads 4 of those bytes.
#define QK 256u
#define UNIT 32u
#define DQ_STEPS 4
#define DQ_NV 2
#if defined(WTYPE_Q4_K)
#define QB 144u
#define QS_AT 16u
#else
#define QB 176u
#define QS_AT 48u
#define QH_AT 16u
#endif

struct dq_unit { uint q, qh, c; float d0, m0, d1, m1; };

// The 6-bit scale and min of sub-block j from the 12 scale bytes (three words).
void k4_scale_min(uvec3 sw, uint j, out uint sc, out uint m) {
  const uint bj = (sw[j >> 2] >> (8u * (j & 3u))) & 0xffu; // byte j
  if (j < 4u) {
    const uint bj4 = (sw[1] >> (8u * j)) & 0xffu; // byte j + 4
    sc = bj & 63u;
    m = bj4 & 63u;
  } else {
    const uint b4 = (sw[0] >> (8u * (j - 4u))) & 0xffu;          // byte j - 4
    const uint b8 = (sw[2] >> (8u * (j - 4u))) & 0xffu;          // byte j + 4
    sc = (b8 & 15u) | ((b4 >> 6) << 4);
    m = (b8 >> 4) | ((bj >> 6) << 4);
  }
}

dq_unit dq_unit_init(uint row, uint u) {
  const uint a = row + (u >> 3) * QB, uu = u & 7u, c = uu >> 1, h = uu & 1u;
  const vec2 dm = unpackHalf2x16(ld_u32(a));
  const uvec3 sw = uvec3(ld_u32(a + 4u), ld_u32(a + 8u), ld_u32(a + 12u));
  uint sc0, mn0, sc1, mn1;
  k4_scale_min(sw, 2u * c, sc0, mn0);
  k4_scale_min(sw, 2u * c + 1u, sc1, mn1);
  dq_unit st;
  st.q = a + QS_AT + 32u * c + 16u * h;
#if defined(WTYPE_Q5_K)
  st.qh = a + QH_AT + 16u * h;
#else
  st.qh = 0u;
#endif
  st.c = c;
  precise float d0 = dm.x * float(sc0), m0 = dm.y * float(mn0), d1 = dm.x * float(sc1), m1 = dm.y * float(mn1);
  st.d0 = d0;
  st.m0 = m0;
  st.d1 = d1;
  st.m1 = m1;
  return st;
}
uint dq_pos(uint u, uint s, uint j) {
  const uint uu = u & 7u;
  return (u >> 3) * 256u + 64u * (uu >> 1) + 16u * (uu & 1u) + 4u * s + 32u * j;
}

void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
  const uint q = ld_u32(st.q + 4u * s);
  uvec4 ql = lo_nibbles(q), qu = hi_nibbles(q);
#if defined(WTYPE_Q5_K)
  const uint hb = ld_u32(st.qh + 4u * s); // qh[l]: bit 2c for the low value, bit 2c+1 for the high one
  ql |= ((uvec4(hb) >> (uvec4(0u, 8u, 16u, 24u) + 2u * st.c)) & 1u) << 4;
  qu |= ((uvec4(hb) >> (uvec4(0u, 8u, 16u, 24u) + 2u * st.c + 1u)) & 1u) << 4;
#endif
  precise vec4 lo = st.d0 * vec4(ql) - st.m0;
  precise vec4 hi = st.d1 * vec4(qu) - st.m1;
  v[0] = lo;
  v[1] = hi;
}

#elif defined(WTYPE_Q6_K)
// Super-blocks of 256 in 8 units of 32. Unit uu = 4h + g of a super-block takes l in 8g .. 8g+7 of half h (ql bytes
// 64h + l and 64h + 32 + l, qh byte 32h + l), i.e. values 128h + l + {0, 32, 64, 96}; step s (of 2) takes 4 of those l.
#define QK 256u
#define UNIT 32u
#define DQ_STEPS 2
#define DQ_NV 4
#define QB 210u

struct dq_unit { uint ql, qh; vec4 ds; };

dq_unit dq_unit_init(uint row, uint u) {
  const uint a = row + (u >> 3) * QB, uu = u & 7u, h = uu >> 2, g = uu & 3u;
  const float d = half_at(a + 208u);
  // int8 scales 8h + g/2 + {0, 2, 4, 6}
  const uint s0 = ld_u32(a + 192u + 8u * h), s1 = ld_u32(a + 196u + 8u * h);
  const ivec4 sa = sbytes4(s0), sb = sbytes4(s1);
  const ivec4 sc = (g >> 1) == 0u ? ivec4(sa.x, sa.z, sb.x, sb.z) : ivec4(sa.y, sa.w, sb.y, sb.w);
  dq_unit st;
  st.ql = a + 64u * h + 8u * g;
  st.qh = a + 128u + 32u * h + 8u * g;
  precise vec4 ds = d * vec4(sc);
  st.ds = ds;
  return st;
}
uint dq_pos(uint u, uint s, uint j) {
  const uint uu = u & 7u;
  return (u >> 3) * 256u + 128u * (uu >> 2) + 8u * (uu & 3u) + 4u * s + 32u * j;
}

void dq_step(dq_unit st, uint s, out vec4 v[DQ_NV]) {
  const uint l0 = ld_u32(st.ql + 4u * s), l1 = ld_u32(st.ql + 32u + 4u * s), hb = ld_u32(st.qh + 4u * s);
  const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
  const ivec4 q0 = ivec4(lo_nibbles(l0) | (((uvec4(hb) >> sh) & 3u) << 4)) - 32;
  const ivec4 q1 = ivec4(lo_nibbles(l1) | (((uvec4(hb) >> (sh + 2u)) & 3u) << 4)) - 32;
  const ivec4 q2 = ivec4(hi_nibbles(l0) | (((uvec4(hb) >> (sh + 4u)) & 3u) << 4)) - 32;
  const ivec4 q3 = ivec4(hi_nibbles(l1) | (((uvec4(hb) >> (sh + 6u)) & 3u) << 4)) - 32;
  precise vec4 v0 = st.ds.x * vec4(q0), v1 = st.ds.y * vec4(q1), v2 = st.ds.z * vec4(q2), v3 = st.ds.w * vec4(q3);
  v[0] = v0;
  v[1] = v1;
  v[2] = v2;
  v[3] = v3;
}

#else
#error "quants.glsl: define one WTYPE_<type>"
#endif
