// The Vulkan backend's programs and sessions behind the HAL (vulkan-backend.cpp holds the table):
//   program  the graph bound to one device: matmul and row-gather weights uploaded once, in their GGUF block layouts,
//            into device-local weight buffers through a staging buffer (the core's copy released after); f32 vectors
//            (norm weights, biases, position grids) in one vectors buffer; a pipeline per kernel the graph needs.
//   session  one context: the activation arena and each cache slot's KV cells in device memory, the host-written batch
//            buffer (meta), input rows and read-back buffers, a descriptor set per op written once, command buffers.
// A batch is recorded op by op into command buffers (no host round trip inside; a prompt's ops are split into a few
// submissions, two in flight, so an abort is seen between them) and the output rows are copied back at the end.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/hal-util.h"
#include "backends/vulkan/vk-context.h"
#include "open-autoglm/backend.h"

namespace aglm_vk {

// Kernels (pipelines) by id: one per weight type for matmul and row gathers, one each for the others.
enum kernel_id : int {
  K_MATMUL = 0,        // + weight type
  K_GET_ROWS = 64,     // + weight type
  K_ELTWISE = 128,
  K_NORM,
  K_ROPE,
  K_KV_STORE,
  K_ATTENTION,
  K_COPY_ROWS,
  K_EMBED_INTERP,
  K_QUANTIZE_Q8,       // activations into int8 blocks for K_MATMUL_DOT
  K_QUANTIZE_Q8K,      // activations into Q8_K super-blocks for the K-quants' K_MATMUL_DOT
  K_MATMUL_DOT = 256,  // + weight type: the integer-dot matmuls (where the device has the path and the type a kernel)
  K_MATMUL_TILE = 384, // + weight type: the f16 prompt tiles (mmk_ or mme_ with cooperative matrices, else mmh_)
};
constexpr int kMaxOpKernels = 3; // an op's kernels: see kernels_of (vk-program.cpp)

// The graph (weights, values, ops, cache slots, ropes, outputs) is the program's own copy (aglm_backend::graph_copy).
struct program : aglm_backend::graph_copy {
  std::unique_ptr<device> dev;
  int device_index = 0;
  int64_t n_vocab = 0, n_hidden = 0;
  // Weights on the device.
  std::vector<buffer> chunks; // raw weights (matmul, row gathers), each weight whole inside one chunk
  buffer vectors;             // f32 vectors
  struct location {
    int chunk = -1;
    uint64_t offset = 0;  // bytes in the chunk
    int64_t vector = -1;  // float offset in `vectors`
  };
  std::vector<location> loc;
  std::vector<std::vector<float>> host_vectors; // rope frequency factors, for the host-computed rope tables
  std::map<int, pipeline> pipes;
  std::string description;
  uint64_t bytes = 0;
  // Whether matmuls with weights of `type` run on the integer-dot path (quantize_q8, then matmul_dot).
  bool uses_dot(int type) const;
  // Whether prompt matmuls (n > matmul_tok, k % 32 == 0) with weights of `type` run on an f16 tile: the cooperative-
  // matrix one where the device has it (before the integer-dot path), else the fp16 one (after it).
  bool uses_tile(int type) const;
  ~program();
};

struct session {
  program *p = nullptr;
  int64_t n_cells = 0, n_batch = 0;
  int kv_type = 0;
  std::vector<uint32_t> value_off; // per value: float offset in the arena
  buffer arena;
  std::vector<buffer> kv;          // per cache slot: K cells then V cells
  std::vector<uint32_t> v_base;    // per slot: where V starts, in cache elements
  buffer meta, input, readback;    // host-visible
  buffer qact;                     // the integer-dot path's quantized activations: n_batch rows of the widest such
                                   // matmul's k / 32 blocks of 36 bytes (none without that path)
  VkDescriptorPool dpool = VK_NULL_HANDLE;
  std::vector<VkDescriptorSet> sets[kMaxOpKernels]; // per op and kernel (kernels_of): its descriptor set, or null
  VkCommandPool cpool = VK_NULL_HANDLE;
  VkCommandBuffer cmd[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
  VkFence fence[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
  uint64_t bytes = 0;
  ~session();
};

int32_t program_build(const aglm_hal_program_desc *desc, std::unique_ptr<program> *out, std::string *err);
int32_t session_build(program *p, const aglm_hal_session_desc *desc, std::unique_ptr<session> *out, std::string *err);
int32_t session_run(session *s, const aglm_hal_batch *b, std::string *err);
// Whether the backend has a kernel for op with weights of type (-1: none or any).
bool supports_op(int32_t op, int32_t type);
// The devices in the order the HAL numbers them: the best first (OPEN_AUTOGLM_VULKAN_DEVICE, an index into the
// runtime's list or part of a device name, puts that one first).
std::vector<int> device_order();

} // namespace aglm_vk
