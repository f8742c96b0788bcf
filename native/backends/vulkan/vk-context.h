// The Vulkan backend's runtime: the loader opened with dlopen/LoadLibrary (no link-time dependency on libvulkan), an
// instance, the physical devices with what the backend needs to know of them (type, memory, subgroups, 16-bit and
// 8-bit arithmetic, integer dot products, cooperative matrices), and for a chosen device a compute queue with buffers,
// pipelines from embedded SPIR-V, and one-shot dispatches. Nothing here throws; failures are strings.
#ifndef AGLM_VK_CONTEXT_H
#define AGLM_VK_CONTEXT_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace aglm_vk {

// VK_KHR_cooperative_matrix's query, declared here with the registry's values: the Vulkan headers of older SDKs
// (Debian 12's 1.3.239) predate it.
struct coopmat_props_khr {
  VkStructureType sType;
  void *pNext;
  uint32_t MSize, NSize, KSize;
  int32_t AType, BType, CType, ResultType; // VkComponentTypeKHR: 0 float16, 1 float32
  VkBool32 saturatingAccumulation;
  int32_t scope; // VkScopeKHR: 3 subgroup
};
struct coopmat_features_khr {
  VkStructureType sType;
  void *pNext;
  VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
};
constexpr VkStructureType kStructCoopmatFeaturesKHR = (VkStructureType)1000506000;
constexpr VkStructureType kStructCoopmatPropsKHR = (VkStructureType)1000506001;
typedef VkResult(VKAPI_PTR *PFN_coopmat_props_khr)(VkPhysicalDevice, uint32_t *, coopmat_props_khr *);

// Every Vulkan function the backend calls, resolved at run time.
struct api {
  PFN_vkGetInstanceProcAddr GetInstanceProcAddr = nullptr;
  PFN_vkCreateInstance CreateInstance = nullptr;
  PFN_vkEnumerateInstanceVersion EnumerateInstanceVersion = nullptr;
  PFN_vkDestroyInstance DestroyInstance = nullptr;
  PFN_vkEnumeratePhysicalDevices EnumeratePhysicalDevices = nullptr;
  PFN_vkGetPhysicalDeviceProperties2 GetPhysicalDeviceProperties2 = nullptr;
  PFN_vkGetPhysicalDeviceFeatures2 GetPhysicalDeviceFeatures2 = nullptr;
  PFN_vkGetPhysicalDeviceMemoryProperties2 GetPhysicalDeviceMemoryProperties2 = nullptr;
  PFN_vkGetPhysicalDeviceQueueFamilyProperties GetPhysicalDeviceQueueFamilyProperties = nullptr;
  PFN_coopmat_props_khr GetPhysicalDeviceCooperativeMatrixPropertiesKHR = nullptr; // may be null
  PFN_vkEnumerateDeviceExtensionProperties EnumerateDeviceExtensionProperties = nullptr;
  PFN_vkCreateDevice CreateDevice = nullptr;
  PFN_vkGetDeviceProcAddr GetDeviceProcAddr = nullptr;
  // device level (the loader's trampolines from vkGetInstanceProcAddr: valid for every device)
  PFN_vkDestroyDevice DestroyDevice = nullptr;
  PFN_vkGetDeviceQueue GetDeviceQueue = nullptr;
  PFN_vkCreateBuffer CreateBuffer = nullptr;
  PFN_vkDestroyBuffer DestroyBuffer = nullptr;
  PFN_vkGetBufferMemoryRequirements GetBufferMemoryRequirements = nullptr;
  PFN_vkAllocateMemory AllocateMemory = nullptr;
  PFN_vkFreeMemory FreeMemory = nullptr;
  PFN_vkBindBufferMemory BindBufferMemory = nullptr;
  PFN_vkMapMemory MapMemory = nullptr;
  PFN_vkUnmapMemory UnmapMemory = nullptr;
  PFN_vkCreateShaderModule CreateShaderModule = nullptr;
  PFN_vkDestroyShaderModule DestroyShaderModule = nullptr;
  PFN_vkCreateDescriptorSetLayout CreateDescriptorSetLayout = nullptr;
  PFN_vkDestroyDescriptorSetLayout DestroyDescriptorSetLayout = nullptr;
  PFN_vkCreatePipelineLayout CreatePipelineLayout = nullptr;
  PFN_vkDestroyPipelineLayout DestroyPipelineLayout = nullptr;
  PFN_vkCreateComputePipelines CreateComputePipelines = nullptr;
  PFN_vkDestroyPipeline DestroyPipeline = nullptr;
  PFN_vkCreateDescriptorPool CreateDescriptorPool = nullptr;
  PFN_vkDestroyDescriptorPool DestroyDescriptorPool = nullptr;
  PFN_vkAllocateDescriptorSets AllocateDescriptorSets = nullptr;
  PFN_vkFreeDescriptorSets FreeDescriptorSets = nullptr;
  PFN_vkUpdateDescriptorSets UpdateDescriptorSets = nullptr;
  PFN_vkCreateCommandPool CreateCommandPool = nullptr;
  PFN_vkDestroyCommandPool DestroyCommandPool = nullptr;
  PFN_vkAllocateCommandBuffers AllocateCommandBuffers = nullptr;
  PFN_vkBeginCommandBuffer BeginCommandBuffer = nullptr;
  PFN_vkEndCommandBuffer EndCommandBuffer = nullptr;
  PFN_vkCmdBindPipeline CmdBindPipeline = nullptr;
  PFN_vkCmdBindDescriptorSets CmdBindDescriptorSets = nullptr;
  PFN_vkCmdPushConstants CmdPushConstants = nullptr;
  PFN_vkCmdDispatch CmdDispatch = nullptr;
  PFN_vkCmdCopyBuffer CmdCopyBuffer = nullptr;
  PFN_vkCmdPipelineBarrier CmdPipelineBarrier = nullptr;
  PFN_vkQueueSubmit QueueSubmit = nullptr;
  PFN_vkQueueWaitIdle QueueWaitIdle = nullptr;
  PFN_vkResetCommandPool ResetCommandPool = nullptr;
  PFN_vkCreateFence CreateFence = nullptr;
  PFN_vkDestroyFence DestroyFence = nullptr;
  PFN_vkWaitForFences WaitForFences = nullptr;
  PFN_vkResetFences ResetFences = nullptr;
  PFN_vkGetFenceStatus GetFenceStatus = nullptr;
};

// What the backend knows of a physical device.
struct device_desc {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  std::string name, driver;
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  uint32_t api_version = 0, vendor_id = 0, device_id = 0;
  uint64_t device_local_bytes = 0, device_local_free = 0; // free: VK_EXT_memory_budget, else 0
  uint32_t compute_queue_family = UINT32_MAX;
  uint32_t subgroup_size = 0;
  bool subgroup_arithmetic = false;
  bool fp16 = false, int8 = false, storage16 = false, storage8 = false;
  bool integer_dot = false, cooperative_matrix = false, memory_budget = false; // cooperative_matrix: VK_KHR_cooperative_matrix listed
  // VK_KHR_cooperative_matrix with its feature, shaderFloat16, the Vulkan memory model and an f16 x f16 + f32 subgroup
  // configuration that tiles the 64 x 64 prompt tile with this subgroup size (coopmat_shape): the KHR build
  // (AGLM_COOPMAT_KHR) can run with these specialization constants.
  bool coopmat_khr = false;
  struct coopmat_shape {
    uint32_t m = 0, n = 0, k = 0; // one product: m rows x n tokens, k values
    uint32_t gr = 0, br = 0, bc = 0; // gr subgroups along the rows; each owns br x bc products
  } khr;
  uint32_t max_shared_bytes = 0; // maxComputeSharedMemorySize
  bool integer_dot_ext = false;         // integer_dot through VK_KHR_shader_integer_dot_product (else Vulkan 1.3 core)
  bool integer_dot_accelerated = false; // the packed signed 4x8 dot runs in hardware (integerDotProduct4x8BitPackedSignedAccelerated)
  // The optional kernel paths enabled on the opened device (device::open, from enabled_paths): subgroupAdd builds, the
  // integer-dot quantized matmuls, f16 prompt tiles, cooperative-matrix prompt tiles. False in the runtime's list,
  // which describes devices without opening them.
  bool use_subgroup = false, use_integer_dot = false, use_fp16 = false, use_coopmat = false;
  bool coopmat_emulated = false; // use_coopmat runs the emulated build (OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE=1)
  uint32_t max_workgroup_invocations = 0, max_storage_buffer_range = 0;
  int32_t score = 0;      // discrete > integrated > virtual > cpu (0: not chosen unless named)
  std::string score_why;
};

const char *type_name(VkPhysicalDeviceType t);

// How subgroups of `sg` invocations (128 in the workgroup) cover matmul.comp's 64 x 64 cooperative-matrix tile with
// m x n x k products: a grid of gr x (128 / sg / gr) subgroups, each with br x bc products, the most even split
// (fewest operand loads); false where the shape does not fit (k must divide the 32 values of a step; operand offsets
// stay 16-byte aligned for m, n, k >= 8).
bool coopmat_grid(uint32_t m, uint32_t n, uint32_t k, uint32_t sg, device_desc::coopmat_shape *out);
// The device's KHR tile shape as JSON, {"m", "n", "k", "gr", "br", "bc"}, or null (the reports of the module and of
// vk-selftest).
std::string coopmat_json(const device_desc &d);

// The optional kernel paths a device gets: each where the device has the feature; none with
// OPEN_AUTOGLM_VULKAN_PLAIN=1 (the plain kernels only: shared-memory sums, f32 arithmetic), so that path can be forced
// and tested on any device; with OPEN_AUTOGLM_VULKAN_PATHS (a comma-separated subset of subgroup, integer-dot, fp16,
// coopmat) only those named. The fp16 and coopmat paths are dropped again when their self-check fails
// (vk-program.cpp: check_tile_path).
// OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE=1 gives devices with shaderFloat16 the cooperative-matrix path with its operations
// emulated (coopmat_emulated): the tile's indexing tested where no device has cooperative matrices.
struct paths {
  bool subgroup = false, integer_dot = false, fp16 = false, coopmat = false, coopmat_emulated = false;
};
bool plain_forced();
paths enabled_paths(const device_desc &d);
// "subgroup, integer dot, fp16, cooperative matrix" (those enabled) or "plain".
std::string paths_text(const paths &p);
paths paths_of(const device_desc &d); // the use_ flags of an opened device
// Whether this module carries the KHR cooperative-matrix tiles (built with a glslc that knows the extension).
inline bool has_khr_tiles() {
#ifdef AGLM_VK_COOPMAT_KHR
  return true;
#else
  return false;
#endif
}

// The loader and an instance, opened once per process. `error` says why when it is not usable.
struct runtime {
  api vk;
  void *lib = nullptr;
  VkInstance instance = VK_NULL_HANDLE;
  std::vector<device_desc> devices;
  std::string loader_path, error;
  uint32_t instance_version = 0;
  uint32_t api_version = 0; // what the instance was created for (VkApplicationInfo::apiVersion)
};
const runtime &get_runtime();

// A logical device with one compute queue.
struct buffer {
  VkBuffer buf = VK_NULL_HANDLE;
  VkDeviceMemory mem = VK_NULL_HANDLE;
  uint64_t size = 0;
  void *mapped = nullptr; // host-visible buffers stay mapped
};

struct pipeline {
  VkShaderModule module = VK_NULL_HANDLE;
  VkDescriptorSetLayout dsl = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipe = VK_NULL_HANDLE;
  uint32_t n_buffers = 0, push_bytes = 0;
};

class device {
 public:
  static std::unique_ptr<device> open(int index, std::string *error);
  ~device();
  const device_desc &desc() const { return desc_; }
  // Turns an f16 prompt-tile path off (coop: the cooperative-matrix one) after a failed self-check.
  void disable_tile_path(bool coop) { (coop ? desc_.use_coopmat : desc_.use_fp16) = false; }
  // A host-visible, coherent storage buffer (mapped), or a device-local one (host_visible false).
  bool create_buffer(uint64_t bytes, bool host_visible, buffer *out, std::string *error);
  void destroy_buffer(buffer *b);
  // spec: n_spec 32-bit specialization constants, constant_id 0 .. n_spec - 1 (none where n_spec is 0).
  bool create_pipeline(const uint32_t *spirv, size_t bytes, uint32_t n_buffers, uint32_t push_bytes, pipeline *out, std::string *error,
                       const uint32_t *spec = nullptr, uint32_t n_spec = 0);
  void destroy_pipeline(pipeline *p);
  // Records and runs one dispatch (groups x, y, z) with `bufs` bound 0..n-1 and the push constants; waits for it.
  bool dispatch(const pipeline &p, const buffer *const *bufs, const void *push, uint32_t gx, uint32_t gy, uint32_t gz, std::string *error);
  // Copies between buffers on the device (staging uploads and downloads); waits.
  bool copy(const buffer &src, const buffer &dst, uint64_t bytes, std::string *error);
  bool copy(const buffer &src, uint64_t src_off, const buffer &dst, uint64_t dst_off, uint64_t bytes, std::string *error);
  // Many copies from one source in one submission (a staging buffer's worth of weights).
  bool copy_many(const buffer &src, const std::vector<std::pair<VkBuffer, VkBufferCopy>> &regions, std::string *error);

  // For callers that record their own command buffers (a session's forward pass).
  VkDevice handle() const { return dev_; }
  const api &fn() const { return *vk_; }
  // Submits one command buffer signalling `fence`; the queue is shared by every session of the device.
  bool submit(VkCommandBuffer cmd, VkFence fence, std::string *error);

 private:
  device() = default;
  bool submit_and_wait(std::string *error);
  const api *vk_ = nullptr;
  device_desc desc_;
  VkDevice dev_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkDescriptorPool dpool_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties mem_props_{};
  std::mutex queue_mu_; // vkQueueSubmit needs external synchronisation; one-shot copies share cmd_
};

} // namespace aglm_vk

#endif
