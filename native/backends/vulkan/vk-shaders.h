// The embedded SPIR-V of the per-weight-type kernels (generated at build time from shaders/matmul.comp and
// get_rows.comp, one build per type; CMakeLists.txt's Vulkan section), looked up by enum aglm_type. Header-only; every
// name has internal linkage, as the generated arrays do, so each translation unit that includes it has its own copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "open-autoglm/types.h"

#include <getrows_bf16.spv.h>
#include <getrows_f16.spv.h>
#include <getrows_f32.spv.h>
#include <getrows_q4_0.spv.h>
#include <getrows_q4_1.spv.h>
#include <getrows_q4_k.spv.h>
#include <getrows_q5_0.spv.h>
#include <getrows_q5_1.spv.h>
#include <getrows_q5_k.spv.h>
#include <getrows_q6_k.spv.h>
#include <getrows_q8_0.spv.h>
#include <mm_bf16.spv.h>
#include <mm_bf16_sg.spv.h>
#include <mm_f16.spv.h>
#include <mm_f16_sg.spv.h>
#include <mm_f32.spv.h>
#include <mm_f32_sg.spv.h>
#include <mm_q4_0.spv.h>
#include <mm_q4_0_sg.spv.h>
#include <mm_q4_1.spv.h>
#include <mm_q4_1_sg.spv.h>
#include <mm_q4_k.spv.h>
#include <mm_q4_k_sg.spv.h>
#include <mm_q5_0.spv.h>
#include <mm_q5_0_sg.spv.h>
#include <mm_q5_1.spv.h>
#include <mm_q5_1_sg.spv.h>
#include <mm_q5_k.spv.h>
#include <mm_q5_k_sg.spv.h>
#include <mm_q6_k.spv.h>
#include <mm_q6_k_sg.spv.h>
#include <mm_q8_0.spv.h>
#include <mm_q8_0_sg.spv.h>
#include <mme_f16.spv.h>
#include <mmh_f16.spv.h>
#include <mme_q4_0.spv.h>
#include <mmh_q4_0.spv.h>
#include <mme_q4_1.spv.h>
#include <mmh_q4_1.spv.h>
#include <mme_q4_k.spv.h>
#include <mmh_q4_k.spv.h>
#include <mme_q5_0.spv.h>
#include <mmh_q5_0.spv.h>
#include <mme_q5_1.spv.h>
#include <mmh_q5_1.spv.h>
#include <mme_q5_k.spv.h>
#include <mmh_q5_k.spv.h>
#include <mme_q6_k.spv.h>
#include <mmh_q6_k.spv.h>
#include <mme_q8_0.spv.h>
#include <mmh_q8_0.spv.h>
#ifdef AGLM_VK_COOPMAT_KHR
#include <mmk_f16.spv.h>
#include <mmk_q4_0.spv.h>
#include <mmk_q4_1.spv.h>
#include <mmk_q4_k.spv.h>
#include <mmk_q5_0.spv.h>
#include <mmk_q5_1.spv.h>
#include <mmk_q5_k.spv.h>
#include <mmk_q6_k.spv.h>
#include <mmk_q8_0.spv.h>
#endif
#include <mmdot_q4_0.spv.h>
#include <mmdot_q4_0_sg.spv.h>
#include <mmdot_q4_1.spv.h>
#include <mmdot_q4_1_sg.spv.h>
#include <mmdot_q4_k.spv.h>
#include <mmdot_q4_k_sg.spv.h>
#include <mmdot_q5_0.spv.h>
#include <mmdot_q5_0_sg.spv.h>
#include <mmdot_q5_1.spv.h>
#include <mmdot_q5_1_sg.spv.h>
#include <mmdot_q5_k.spv.h>
#include <mmdot_q5_k_sg.spv.h>
#include <mmdot_q6_k.spv.h>
#include <mmdot_q6_k_sg.spv.h>
#include <mmdot_q8_0.spv.h>
#include <mmdot_q8_0_sg.spv.h>

namespace aglm_vk {

struct weight_shaders {
  int type;                                           // enum aglm_type
  const uint32_t *mm, *mm_sg, *get_rows;              // matmul (shared-memory sum), its subgroupAdd build, row gather
  size_t mm_bytes, mm_sg_bytes, get_rows_bytes;
};

#define AGLM_VK_WEIGHT_SHADERS(T, t) \
  {AGLM_TYPE_##T, mm_##t##_spv, mm_##t##_sg_spv, getrows_##t##_spv, mm_##t##_spv_bytes, mm_##t##_sg_spv_bytes, getrows_##t##_spv_bytes}
// Every weight type the kernels decode (the CPU's matmul weight types).
static const weight_shaders weight_shader_table[] = {
    AGLM_VK_WEIGHT_SHADERS(F32, f32),   AGLM_VK_WEIGHT_SHADERS(F16, f16),   AGLM_VK_WEIGHT_SHADERS(BF16, bf16),
    AGLM_VK_WEIGHT_SHADERS(Q8_0, q8_0), AGLM_VK_WEIGHT_SHADERS(Q4_0, q4_0), AGLM_VK_WEIGHT_SHADERS(Q4_1, q4_1),
    AGLM_VK_WEIGHT_SHADERS(Q5_0, q5_0), AGLM_VK_WEIGHT_SHADERS(Q5_1, q5_1), AGLM_VK_WEIGHT_SHADERS(Q4_K, q4_k),
    AGLM_VK_WEIGHT_SHADERS(Q5_K, q5_k), AGLM_VK_WEIGHT_SHADERS(Q6_K, q6_k),
};
#undef AGLM_VK_WEIGHT_SHADERS

// The shaders of a weight type, or null if no kernel decodes it.
static inline const weight_shaders *find_weight_shaders(int type) {
  for (const weight_shaders &s : weight_shader_table)
    if (s.type == type) return &s;
  return nullptr;
}

// matmul_<type>'s SPIR-V (subgroup: the subgroupAdd build, for devices with subgroup arithmetic in compute), or null.
static inline const uint32_t *mm_spirv(int type, size_t *bytes, bool subgroup = false) {
  const weight_shaders *s = find_weight_shaders(type);
  if (!s) return *bytes = 0, nullptr;
  *bytes = subgroup ? s->mm_sg_bytes : s->mm_bytes;
  return subgroup ? s->mm_sg : s->mm;
}

// The prompt tiles in f16 (matmul.comp's tiled path alone): mmh_<type> for devices with shaderFloat16, mmk_<type>
// (cooperative matrices, VK_KHR_cooperative_matrix, the shape as specialization constants; built where the build has
// a glslc that knows GL_KHR_cooperative_matrix: AGLM_VK_COOPMAT_KHR), mme_<type> the cooperative-matrix tile with its
// operations emulated (tests); the F16 weights and the quantized types.
enum tile_kind { TILE_F16, TILE_COOP_KHR, TILE_COOP_EMULATED };
struct tile_shaders {
  int type;
  const uint32_t *spirv[3];
  size_t bytes[3];
};
#ifdef AGLM_VK_COOPMAT_KHR
#define AGLM_VK_KHR_TILE(t) mmk_##t##_spv
#define AGLM_VK_KHR_TILE_BYTES(t) mmk_##t##_spv_bytes
#else
#define AGLM_VK_KHR_TILE(t) nullptr
#define AGLM_VK_KHR_TILE_BYTES(t) 0
#endif
#define AGLM_VK_TILE_SHADERS(T, t)                                             \
  {AGLM_TYPE_##T,                                                              \
   {mmh_##t##_spv, AGLM_VK_KHR_TILE(t), mme_##t##_spv},                         \
   {mmh_##t##_spv_bytes, AGLM_VK_KHR_TILE_BYTES(t), mme_##t##_spv_bytes}}
static const tile_shaders tile_shader_table[] = {
    AGLM_VK_TILE_SHADERS(F16, f16),   AGLM_VK_TILE_SHADERS(Q8_0, q8_0), AGLM_VK_TILE_SHADERS(Q4_0, q4_0),
    AGLM_VK_TILE_SHADERS(Q4_1, q4_1), AGLM_VK_TILE_SHADERS(Q5_0, q5_0), AGLM_VK_TILE_SHADERS(Q5_1, q5_1),
    AGLM_VK_TILE_SHADERS(Q4_K, q4_k), AGLM_VK_TILE_SHADERS(Q5_K, q5_k), AGLM_VK_TILE_SHADERS(Q6_K, q6_k),
};
#undef AGLM_VK_TILE_SHADERS
#undef AGLM_VK_KHR_TILE
#undef AGLM_VK_KHR_TILE_BYTES

// The f16 prompt tile's SPIR-V of a kind for a weight type, or null (F32, BF16; the KHR kind in a build without it).
static inline const uint32_t *mm_tile_spirv(int type, tile_kind kind, size_t *bytes) {
  for (const tile_shaders &s : tile_shader_table)
    if (s.type == type) return *bytes = s.bytes[kind], s.spirv[kind];
  return *bytes = 0, nullptr;
}

// The integer-dot matmuls: the 32-block types (shaders/matmul_dot.comp) on quantize_q8's activation blocks, the
// K-quants (shaders/matmul_dot_k.comp) on quantize_q8k's Q8_K super-blocks.
struct dot_shaders {
  int type;
  const uint32_t *mm, *mm_sg;
  size_t mm_bytes, mm_sg_bytes;
};
#define AGLM_VK_DOT_SHADERS(T, t) {AGLM_TYPE_##T, mmdot_##t##_spv, mmdot_##t##_sg_spv, mmdot_##t##_spv_bytes, mmdot_##t##_sg_spv_bytes}
static const dot_shaders dot_shader_table[] = {
    AGLM_VK_DOT_SHADERS(Q8_0, q8_0), AGLM_VK_DOT_SHADERS(Q4_0, q4_0), AGLM_VK_DOT_SHADERS(Q4_1, q4_1),
    AGLM_VK_DOT_SHADERS(Q5_0, q5_0), AGLM_VK_DOT_SHADERS(Q5_1, q5_1), AGLM_VK_DOT_SHADERS(Q4_K, q4_k),
    AGLM_VK_DOT_SHADERS(Q5_K, q5_k), AGLM_VK_DOT_SHADERS(Q6_K, q6_k),
};
#undef AGLM_VK_DOT_SHADERS

// matmul_dot_<type>'s SPIR-V (subgroup: its subgroupAdd build), or null for a type without an integer-dot kernel.
static inline const uint32_t *mm_dot_spirv(int type, size_t *bytes, bool subgroup = false) {
  for (const dot_shaders &s : dot_shader_table)
    if (s.type == type) return *bytes = subgroup ? s.mm_sg_bytes : s.mm_bytes, subgroup ? s.mm_sg : s.mm;
  return *bytes = 0, nullptr;
}

// Whether a type's integer-dot matmul reads Q8_K super-blocks (quantize_q8k) rather than quantize_q8's blocks of 32.
static inline bool dot_is_k(int type) { return type == AGLM_TYPE_Q4_K || type == AGLM_TYPE_Q5_K || type == AGLM_TYPE_Q6_K; }

// get_rows_<type>'s SPIR-V, or null.
static inline const uint32_t *get_rows_spirv(int type, size_t *bytes) {
  const weight_shaders *s = find_weight_shaders(type);
  if (!s) return *bytes = 0, nullptr;
  *bytes = s->get_rows_bytes;
  return s->get_rows;
}

} // namespace aglm_vk
