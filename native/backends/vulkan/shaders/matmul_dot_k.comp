#version 450
// matmul_dot_k_<type>: the integer-dot matmuls of the K-quants Q4_K, Q5_K, Q6_K on quantize_q8k.comp's Q8_K
// super-blocks (73 words: float d, 256 int8 4 a word, 16 int16 bsums) at word x_off + t * x_stride + 73 * block of
// binding 1; otherwise matmul_dot.comp's contract and dispatch (vk-kernels.h matmul_push, matmul_groups). Per
// super-block the CPU reference's arithmetic (ref-matmul.cpp aglm_dot_k45, aglm_dot_q6_K): exact integer sums with the
// sub-block scales, then Q4_K/Q5_K (d_w d_x) S1 - (dmin_w d_x) S2 (S2 from the Q8_K bsums), Q6_K (d_w d_x) S, with no
// fused multiply-add; only the order of the float sum over super-blocks differs. Weights become words of 4 int8 in the
// activation's value order, each word pair meeting in one OpSDot.
//   - n <= MM_TOK (decode): MM_ROWS rows a workgroup, its invocations split the row's super-blocks, then a shared-memory
//     sum (built with AGLM_SUBGROUP: subgroupAdd first).
//   - n > MM_TOK (prompts): a tile of MT rows x MT tokens; per super-block the tile's weights are decoded once and the
//     tokens' super-blocks copied into shared memory, and each invocation sums 4 rows x 4 tokens from there.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_spirv_intrinsics : require
#ifdef AGLM_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_format);

#define MM_WG 64u
#define MM_ROWS 2u
#define MM_TOK 8u
#define MT 32u
#define QW 73u // words per activation super-block

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer W { uint w[]; };
layout(std430, binding = 1) readonly buffer QX { uint xq[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer B { float b[]; };
layout(push_constant) uniform P {
  uint w_off, row_bytes, k, m, n;
  uint x_off, x_stride, y_off, y_stride;
  uint b_off, has_bias;
} p;

#include "quants.glsl"

#if !defined(WTYPE_Q4_K) && !defined(WTYPE_Q5_K) && !defined(WTYPE_Q6_K)
#error "matmul_dot_k.comp: a K-quant type"
#endif

// Bits at position `bit` of the 4 bytes of v, moved to bit 4 (count 1) or bits 4-5 (count 2) of each byte.
uint byte_bits(uint v, uint bit, uint mask) { return ((v >> bit) & mask) << 4; }

// One super-block's term for the row at byte `row`, super-block u, activation super-block at word xa.
float sb_term(uint row, uint u, uint xa) {
  const uint a = row + u * QB;
  const float dx = uintBitsToFloat(xq[xa]);
#if defined(WTYPE_Q6_K)
  int s = 0;
  for (uint h = 0u; h < 2u; h++)
    for (uint c = 0u; c < 4u; c++) { // values 128h + 32c + l, l < 32: groups 8h + 2c, 8h + 2c + 1
      int isum[2] = int[2](0, 0);
      for (uint wd = 0u; wd < 8u; wd++) {
        const uint l = 4u * wd;
        const uint ql = ld_u32(a + 64u * h + l + ((c & 1u) != 0u ? 32u : 0u));
        const uint qh = ld_u32(a + 128u + 32u * h + l);
        uint qv = ((c < 2u) ? ql : (ql >> 4)) & 0x0f0f0f0fu;
        qv |= byte_bits(qh, 2u * c, 0x03030303u);
        qv = (qv + 0x60606060u) ^ 0x80808080u; // q - 32 per byte
        isum[wd / 4u] += sdot4x8(qv, xq[xa + 1u + 32u * h + 8u * c + wd], 0);
      }
      const uint g = 8u * h + 2u * c;
      const uint sw = ld_u32(a + 192u + (g & ~3u)); // 4 int8 scales holding g and g + 1
      const ivec4 sc = sbytes4(sw);
      s += sc[g & 3u] * isum[0] + sc[(g & 3u) + 1u] * isum[1];
    }
  precise float dd = half_at(a + 208u) * dx;
  precise float v = dd * float(s);
  return v;
#else
  const vec2 dm = unpackHalf2x16(ld_u32(a));
  const uint s0 = ld_u32(a + 4u), s1w = ld_u32(a + 8u), s2w = ld_u32(a + 12u);
  const uvec4 b0 = bytes4(s0), b1 = bytes4(s1w), b2 = bytes4(s2w);
  int s1 = 0, s2 = 0;
  for (uint j = 0u; j < 8u; j++) {
    int sc, mn;
    if (j < 4u) {
      sc = int(b0[j] & 63u);
      mn = int(b1[j] & 63u);
    } else {
      sc = int((b2[j - 4u] & 15u) | (b0[j - 4u] >> 6) << 4);
      mn = int((b2[j - 4u] >> 4) | (b1[j - 4u] >> 6) << 4);
    }
    int isum = 0;
    for (uint wd = 0u; wd < 8u; wd++) {
      const uint qw = ld_u32(a + QS_AT + 32u * (j / 2u) + 4u * wd);
      uint qv = ((j & 1u) != 0u ? (qw >> 4) : qw) & 0x0f0f0f0fu;
#if defined(WTYPE_Q5_K)
      qv |= byte_bits(ld_u32(a + 16u + 4u * wd), j, 0x01010101u);
#endif
      isum += sdot4x8(qv, xq[xa + 1u + 8u * j + wd], 0);
    }
    const uint bs = xq[xa + 65u + j]; // bsums 2j, 2j + 1
    const int xsum = (int(bs << 16) >> 16) + (int(bs) >> 16);
    s1 += sc * isum;
    s2 += mn * xsum;
  }
  precise float d1 = dm.x * dx;
  precise float d2 = dm.y * dx;
  precise float t1 = d1 * float(s1);
  precise float t2 = d2 * float(s2);
  precise float v = t1 - t2;
  return v;
#endif
}

shared float red[MM_ROWS * MM_TOK][MM_WG];

uint row_group() { return gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

void matvec() {
  const uint r0 = row_group() * MM_ROWS;
  if (r0 >= p.m) return;
  const uint nt = p.n;
  const uint tid = gl_LocalInvocationID.x;
  uint row[MM_ROWS];
  for (uint r = 0u; r < MM_ROWS; r++) row[r] = p.w_off + min(r0 + r, p.m - 1u) * p.row_bytes;
  float acc[MM_ROWS][MM_TOK];
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) acc[r][t] = 0.0;

  const uint nb = p.k / 256u;
  for (uint u = tid; u < nb; u += MM_WG)
    for (uint t = 0u; t < MM_TOK; t++)
      if (t < nt) {
        const uint xa = p.x_off + t * p.x_stride + u * QW;
        for (uint r = 0u; r < MM_ROWS; r++) acc[r][t] += sb_term(row[r], u, xa);
      }

#ifdef AGLM_SUBGROUP
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) {
      const float v = subgroupAdd(acc[r][t]);
      if (subgroupElect()) red[r * MM_TOK + t][gl_SubgroupID] = v;
    }
  barrier();
  if (tid < MM_ROWS * MM_TOK) {
    float v = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; g++) v += red[tid][g];
    red[tid][0] = v;
  }
#else
  for (uint r = 0u; r < MM_ROWS; r++)
    for (uint t = 0u; t < MM_TOK; t++) red[r * MM_TOK + t][tid] = acc[r][t];
  barrier();
  for (uint h = MM_WG / 2u; h > 0u; h >>= 1) {
    if (tid < h)
      for (uint q = 0u; q < MM_ROWS * MM_TOK; q++) red[q][tid] += red[q][tid + h];
    barrier();
  }
#endif
  if (tid < MM_ROWS * MM_TOK) {
    const uint r = r0 + tid / MM_TOK, t = tid % MM_TOK;
    if (r < p.m && t < nt) {
      float v = red[tid][0];
      if (p.has_bias != 0u) v += b[p.b_off + r];
      y[p.y_off + t * p.y_stride + r] = v;
    }
  }
}

// The tiled path. Per super-block, the tile's weight rows are decoded once into shared memory (64 words of packed
// int8 in the activation's value order, the 16 integer sub-block scales (Q4_K/Q5_K: 8 scales, 8 mins), d and dmin) and
// the tokens' Q8_K super-blocks copied beside them; invocation pair q loads row and token q / 2, side q % 2 of each.
// Invocation (tr, tt) then sums rows tr + 8i x tokens tt + 8j, i, j < 4: exact integer sums per sub-block with their
// scales, then sb_term's float steps.
#define KW 64u // quant words per super-block
shared uint wsq[MT][KW + 1u], xsq[MT][QW];
shared int wsc[MT][16];
shared vec2 wsd[MT];

// Word wi (values 4 wi .. 4 wi + 3) of the super-block at byte a, as 4 int8 (Q6_K: q - 32; Q4_K, Q5_K: q >= 0).
uint quant_word(uint a, uint wi) {
#if defined(WTYPE_Q6_K)
  const uint h = wi / 32u, c = (wi / 8u) % 4u, wd = wi % 8u;
  const uint ql = ld_u32(a + 64u * h + 4u * wd + ((c & 1u) != 0u ? 32u : 0u));
  const uint qh = ld_u32(a + 128u + 32u * h + 4u * wd);
  uint qv = ((c < 2u) ? ql : (ql >> 4)) & 0x0f0f0f0fu;
  qv |= byte_bits(qh, 2u * c, 0x03030303u);
  return (qv + 0x60606060u) ^ 0x80808080u;
#else
  const uint j = wi / 8u, wd = wi % 8u;
  const uint qw = ld_u32(a + QS_AT + 32u * (j / 2u) + 4u * wd);
  uint qv = ((j & 1u) != 0u ? (qw >> 4) : qw) & 0x0f0f0f0fu;
#if defined(WTYPE_Q5_K)
  qv |= byte_bits(ld_u32(a + 16u + 4u * wd), j, 0x01010101u);
#endif
  return qv;
#endif
}

void load_tile(uint lrow, uint lx, uint u, uint lr, uint side) {
  const uint a = lrow + u * QB;
  for (uint wi = 32u * side; wi < 32u * side + 32u; wi++) wsq[lr][wi] = quant_word(a, wi);
  const uint xa = lx + u * QW;
  for (uint i = side * 37u; i < min(QW, side * 37u + 37u); i++) xsq[lr][i] = xq[xa + i];
  if (side != 0u) return;
#if defined(WTYPE_Q6_K)
  for (uint g = 0u; g < 16u; g++) wsc[lr][g] = sbytes4(ld_u32(a + 192u + 4u * (g / 4u)))[g % 4u];
  wsd[lr] = vec2(half_at(a + 208u), 0.0);
#else
  const uvec4 b0 = bytes4(ld_u32(a + 4u)), b1 = bytes4(ld_u32(a + 8u)), b2 = bytes4(ld_u32(a + 12u));
  for (uint j = 0u; j < 4u; j++) {
    wsc[lr][j] = int(b0[j] & 63u);
    wsc[lr][8u + j] = int(b1[j] & 63u);
    wsc[lr][4u + j] = int((b2[j] & 15u) | (b0[j] >> 6) << 4);
    wsc[lr][12u + j] = int((b2[j] >> 4) | (b1[j] >> 6) << 4);
  }
  wsd[lr] = unpackHalf2x16(ld_u32(a));
#endif
}

void matmul_tiled() {
  const uint r0 = row_group() * MT;
  if (r0 >= p.m) return;
  const uint t0 = gl_WorkGroupID.y * MT;
  const uint tid = gl_LocalInvocationID.x;
  const uint lr = tid >> 1, side = tid & 1u;
  const uint lrow = p.w_off + min(r0 + lr, p.m - 1u) * p.row_bytes;
  const uint lx = p.x_off + min(t0 + lr, p.n - 1u) * p.x_stride;
  const uint tr = tid & 7u, tt = tid >> 3; // rows tr + 8i, tokens tt + 8j, i, j < 4
  float acc[4][4];
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
  const uint nb = p.k / 256u;
  for (uint u = 0u; u < nb; u++) {
    load_tile(lrow, lx, u, lr, side);
    barrier();
#if defined(WTYPE_Q6_K)
    int s[4][4];
    for (uint i = 0u; i < 4u; i++)
      for (uint j = 0u; j < 4u; j++) s[i][j] = 0;
    for (uint g = 0u; g < 16u; g++) { // groups of 16 values: words 4g .. 4g + 3
      uint xv[4][4];
      for (uint j = 0u; j < 4u; j++)
        for (uint q = 0u; q < 4u; q++) xv[j][q] = xsq[tt + 8u * j][1u + 4u * g + q];
      for (uint i = 0u; i < 4u; i++) {
        const uint ri = tr + 8u * i;
        uint wv[4];
        for (uint q = 0u; q < 4u; q++) wv[q] = wsq[ri][4u * g + q];
        const int sc = wsc[ri][g];
        for (uint j = 0u; j < 4u; j++) {
          int isum = 0;
          for (uint q = 0u; q < 4u; q++) isum += sdot4x8(wv[q], xv[j][q], 0);
          s[i][j] += sc * isum;
        }
      }
    }
    for (uint i = 0u; i < 4u; i++)
      for (uint j = 0u; j < 4u; j++) {
        precise float dd = wsd[tr + 8u * i].x * uintBitsToFloat(xsq[tt + 8u * j][0]);
        precise float v = dd * float(s[i][j]);
        acc[i][j] += v;
      }
#else
    int s1[4][4], s2[4][4];
    for (uint i = 0u; i < 4u; i++)
      for (uint j = 0u; j < 4u; j++) s1[i][j] = s2[i][j] = 0;
    for (uint sb = 0u; sb < 8u; sb++) { // sub-blocks of 32 values: words 8 sb .. 8 sb + 7
      uint xv[4][8];
      int xsum[4];
      for (uint j = 0u; j < 4u; j++) {
        for (uint q = 0u; q < 8u; q++) xv[j][q] = xsq[tt + 8u * j][1u + 8u * sb + q];
        const uint bs = xsq[tt + 8u * j][65u + sb]; // bsums 2 sb, 2 sb + 1
        xsum[j] = (int(bs << 16) >> 16) + (int(bs) >> 16);
      }
      for (uint i = 0u; i < 4u; i++) {
        const uint ri = tr + 8u * i;
        uint wv[8];
        for (uint q = 0u; q < 8u; q++) wv[q] = wsq[ri][8u * sb + q];
        const int sc = wsc[ri][sb], mn = wsc[ri][8u + sb];
        for (uint j = 0u; j < 4u; j++) {
          int isum = 0;
          for (uint q = 0u; q < 8u; q++) isum += sdot4x8(wv[q], xv[j][q], 0);
          s1[i][j] += sc * isum;
          s2[i][j] += mn * xsum[j];
        }
      }
    }
    for (uint i = 0u; i < 4u; i++)
      for (uint j = 0u; j < 4u; j++) {
        const float dx = uintBitsToFloat(xsq[tt + 8u * j][0]);
        const vec2 dm = wsd[tr + 8u * i];
        precise float d1 = dm.x * dx;
        precise float d2 = dm.y * dx;
        precise float t1 = d1 * float(s1[i][j]);
        precise float t2 = d2 * float(s2[i][j]);
        precise float v = t1 - t2;
        acc[i][j] += v;
      }
#endif
    barrier();
  }
  for (uint i = 0u; i < 4u; i++) {
    const uint r = r0 + tr + 8u * i;
    if (r >= p.m) continue;
    float bias = 0.0;
    if (p.has_bias != 0u) bias = b[p.b_off + r];
    for (uint j = 0u; j < 4u; j++) {
      const uint t = t0 + tt + 8u * j;
      if (t < p.n) y[p.y_off + t * p.y_stride + r] = acc[i][j] + bias;
    }
  }
}

void main() {
  if (p.n > MM_TOK) matmul_tiled();
  else matvec();
}
