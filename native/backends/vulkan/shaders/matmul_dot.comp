#version 450
// matmul_dot_<type>: y[t][r] = sum over blocks of (integer dot of W's block with the activation's int8 block) scaled,
// for the 32-blocks Q8_0, Q4_0, Q5_0 (x Q8_0: isum * (d_w * d_x)) and Q4_1, Q5_1 (x Q8_1: (d_w * d_x) * isum +
// m_w * s_x), the CPU reference's arithmetic (ref-matmul.cpp) block by block; only the order of the float sum over
// blocks differs. The activations are quantize_q8.comp's blocks (9 words: d | s << 16, then 32 int8, 4 a word) at
// word x_off + t * x_stride + 9 * block of binding 1; otherwise the contract is matmul.comp's (vk-kernels.h
// matmul_push, matmul_groups). Weights become 8 words of packed int8 per block, in the activation's value order, and
// each word pair meets in one OpSDot (SPV_KHR_integer_dot_product, 4x8-bit packed: the device's integer dot path).
//   - n <= MM_TOK (decode): MM_ROWS rows a workgroup, its invocations split the row's blocks, then a shared-memory
//     sum (built with AGLM_SUBGROUP: subgroupAdd first).
//   - n > MM_TOK (prompts): a tile of MT rows x MT tokens; per BK blocks the tile's weight and activation blocks go
//     to shared memory once, and each invocation accumulates 4 rows x 4 tokens.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_spirv_intrinsics : require
#ifdef AGLM_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// OpSDot (4450) on two 32-bit words of packed signed int8 (PackedVectorFormat4x8Bit = 0): capabilities DotProduct
// (6019) and DotProductInput4x8BitPacked (6018). glslc releases before GL_EXT_integer_dot_product reach it this way.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_format);

#define MM_WG 64u
#define MM_ROWS 2u
#define MM_TOK 8u
#define MT 32u // the tiled path's rows and tokens per workgroup
#define BK 4u  // the tiled path's blocks per step
#define QW 9u  // words per activation block

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

#if !defined(WTYPE_Q8_0) && !defined(WTYPE_Q4_0) && !defined(WTYPE_Q4_1) && !defined(WTYPE_Q5_0) && !defined(WTYPE_Q5_1)
#error "matmul_dot.comp: a 32-block type"
#endif
#if defined(WTYPE_Q4_1) || defined(WTYPE_Q5_1)
#define HAS_MIN 1
#endif

// The 5th bits of 4 consecutive values (bits 0..3 of v) as bit 4 of the 4 bytes of a word.
uint bit4_bytes(uint v) { return ((v * 0x00204081u) & 0x01010101u) << 4; }

// Block u of the row at byte `row`: 8 words of packed int8 quants (word j: values 4j .. 4j+3), d and m (or 0). The
// Q4_0 / Q5_0 offsets (-8, -16) are taken per byte: (q + 0x78) ^ 0x80 is q - 8 as int8 for q < 16, (q + 0x70) ^ 0x80
// is q - 16 for q < 32 (no carry leaves a byte).
void load_block(uint row, uint u, out uint qs[8], out vec2 dm) {
  const uint a = row + u * QB;
#if defined(HAS_MIN)
  dm = unpackHalf2x16(ld_u32(a));
#else
  dm = vec2(half_at(a), 0.0);
#endif
#if defined(WTYPE_Q8_0)
  for (uint j = 0u; j < 8u; j++) qs[j] = ld_u32(a + QS_AT + 4u * j);
#else
#if defined(WTYPE_Q5_0) || defined(WTYPE_Q5_1)
  const uint qh = ld_u32(a + QS_AT - 4u);
#endif
  for (uint j = 0u; j < 4u; j++) {
    const uint qw = ld_u32(a + QS_AT + 4u * j);
    uint lo = qw & 0x0f0f0f0fu, hi = (qw >> 4) & 0x0f0f0f0fu;
#if defined(WTYPE_Q5_0) || defined(WTYPE_Q5_1)
    lo |= bit4_bytes((qh >> (4u * j)) & 0xfu);
    hi |= bit4_bytes((qh >> (16u + 4u * j)) & 0xfu);
#endif
#if defined(WTYPE_Q4_0)
    lo = (lo + 0x78787878u) ^ 0x80808080u;
    hi = (hi + 0x78787878u) ^ 0x80808080u;
#elif defined(WTYPE_Q5_0)
    lo = (lo + 0x70707070u) ^ 0x80808080u;
    hi = (hi + 0x70707070u) ^ 0x80808080u;
#endif
    qs[j] = lo;
    qs[j + 4u] = hi;
  }
#endif
}

// One block's term: the CPU reference's float operations (no fused multiply-add).
float block_term(int isum, vec2 wdm, vec2 xds) {
  precise float dd = wdm.x * xds.x;
#if defined(HAS_MIN)
  precise float v = dd * float(isum) + wdm.y * xds.y;
#else
  precise float v = float(isum) * dd;
#endif
  return v;
}

shared float red[MM_ROWS * MM_TOK][MM_WG];
shared uint wsq[MT][BK * 8u + 1u], xsq[MT][BK * 8u + 1u]; // the tiled path: [row][block word], [token][block word]
shared vec2 wsd[MT][BK], xsd[MT][BK];

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

  const uint nb = p.k / 32u;
  for (uint u = tid; u < nb; u += MM_WG) {
    uint wq[MM_ROWS][8];
    vec2 wdm[MM_ROWS];
    for (uint r = 0u; r < MM_ROWS; r++) load_block(row[r], u, wq[r], wdm[r]);
    for (uint t = 0u; t < MM_TOK; t++) {
      if (t < nt) {
        const uint xa = p.x_off + t * p.x_stride + u * QW;
        const vec2 xds = unpackHalf2x16(xq[xa]);
        uint xv[8];
        for (uint j = 0u; j < 8u; j++) xv[j] = xq[xa + 1u + j];
        for (uint r = 0u; r < MM_ROWS; r++) {
          int isum = 0;
          for (uint j = 0u; j < 8u; j++) isum += sdot4x8(wq[r][j], xv[j], 0);
          acc[r][t] += block_term(isum, wdm[r], xds);
        }
      }
    }
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

void matmul_tiled() {
  const uint r0 = row_group() * MT;
  if (r0 >= p.m) return;
  const uint t0 = gl_WorkGroupID.y * MT;
  const uint tid = gl_LocalInvocationID.x;
  // Loading: invocations 0..31 load weight row r0 + tid, 32..63 token t0 + tid - 32 (clamped: not written).
  const uint lr = tid & 31u;
  const bool loads_w = tid < 32u;
  const uint lrow = p.w_off + min(r0 + lr, p.m - 1u) * p.row_bytes;
  const uint lx = p.x_off + min(t0 + lr, p.n - 1u) * p.x_stride;
  // Computing: rows tr + 8i and tokens tt + 8j, i, j < 4.
  const uint tr = tid & 7u, tt = tid >> 3;
  float acc[4][4];
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

  const uint nb = p.k / 32u;
  for (uint c = 0u; c < nb; c += BK) {
    const uint nbk = min(BK, nb - c);
    for (uint bb = 0u; bb < nbk; bb++) {
      if (loads_w) {
        uint qs[8];
        vec2 dm;
        load_block(lrow, c + bb, qs, dm);
        for (uint j = 0u; j < 8u; j++) wsq[lr][bb * 8u + j] = qs[j];
        wsd[lr][bb] = dm;
      } else {
        const uint xa = lx + (c + bb) * QW;
        xsd[lr][bb] = unpackHalf2x16(xq[xa]);
        for (uint j = 0u; j < 8u; j++) xsq[lr][bb * 8u + j] = xq[xa + 1u + j];
      }
    }
    barrier();
    for (uint bb = 0u; bb < nbk; bb++) {
      uint xv[4][8];
      for (uint j = 0u; j < 4u; j++)
        for (uint q = 0u; q < 8u; q++) xv[j][q] = xsq[tt + 8u * j][bb * 8u + q];
      for (uint i = 0u; i < 4u; i++) {
        const uint ri = tr + 8u * i;
        uint wv[8];
        for (uint q = 0u; q < 8u; q++) wv[q] = wsq[ri][bb * 8u + q];
        const vec2 wdm = wsd[ri][bb];
        for (uint j = 0u; j < 4u; j++) {
          int isum = 0;
          for (uint q = 0u; q < 8u; q++) isum += sdot4x8(wv[q], xv[j][q], 0);
          acc[i][j] += block_term(isum, wdm, xsd[tt + 8u * j][bb]);
        }
      }
    }
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
