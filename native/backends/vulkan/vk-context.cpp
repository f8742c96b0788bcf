// The Vulkan runtime (see vk-context.h): loader, instance, device discovery and scoring, and a minimal compute path.
#include "backends/vulkan/vk-context.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace aglm_vk {

const char *type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

namespace {

#if defined(__APPLE__)
// The directory of the library this code is linked into (the Vulkan module, or vk-selftest): the darwin prebuild
// carries libMoltenVK.dylib there.
std::string own_dir() {
  Dl_info info;
  if (!dladdr((void *)&own_dir, &info) || !info.dli_fname) return "";
  const std::string p = info.dli_fname;
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}
#endif

// Opens the Vulkan loader: OPEN_AUTOGLM_VULKAN_LOADER alone when set; else the system's (on macOS also MoltenVK, a
// driver that exports vkGetInstanceProcAddr itself, on the search path and then beside this module).
void *open_library(std::string *path, std::string *error) {
#if defined(_WIN32)
  const char *names[] = {"vulkan-1.dll"};
#elif defined(__APPLE__)
  const char *names[] = {"libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"};
#else
  const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
#endif
  if (const char *env = std::getenv("OPEN_AUTOGLM_VULKAN_LOADER")) {
#ifdef _WIN32
    if (void *h = (void *)LoadLibraryA(env)) return *path = env, h;
#else
    if (void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL)) return *path = env, h;
#endif
    *error = std::string("no Vulkan loader: OPEN_AUTOGLM_VULKAN_LOADER (") + env + ") could not be opened";
    return nullptr;
  }
  for (const char *n : names) {
#ifdef _WIN32
    if (void *h = (void *)LoadLibraryA(n)) return *path = n, h;
#else
    if (void *h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) return *path = n, h;
#endif
  }
#if defined(__APPLE__)
  const std::string bundled = own_dir() + "/libMoltenVK.dylib";
  if (void *h = dlopen(bundled.c_str(), RTLD_NOW | RTLD_LOCAL)) return *path = bundled, h;
  *error = "no Vulkan loader (libvulkan.1.dylib, libMoltenVK.dylib, " + bundled + ") could be opened";
#elif defined(_WIN32)
  *error = "no Vulkan loader (vulkan-1.dll) could be opened (install a GPU driver with Vulkan support)";
#else
  *error = "no Vulkan loader (libvulkan.so.1) could be opened (install libvulkan1 and a Vulkan driver)";
#endif
  return nullptr;
}

void *symbol(void *lib, const char *name) {
#ifdef _WIN32
  return (void *)GetProcAddress((HMODULE)lib, name);
#else
  return dlsym(lib, name);
#endif
}

bool has_ext(const std::vector<VkExtensionProperties> &exts, const char *name) {
  for (const VkExtensionProperties &e : exts)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

// The cooperative-matrix tile's shared memory (matmul.comp): two 64 x 40 f16 operand tiles and the 64 x 64 f32 sums.
constexpr uint32_t kCoopmatSharedBytes = 2 * 64 * 40 * 2 + 64 * 64 * 4;

} // namespace

bool coopmat_grid(uint32_t m, uint32_t n, uint32_t k, uint32_t sg, device_desc::coopmat_shape *out) {
  if (m < 8 || n < 8 || k < 8 || 64 % m || 64 % n || 32 % k || sg == 0 || sg > 128 || 128 % sg) return false;
  const uint32_t nsg = 128 / sg, rows = 64 / m, cols = 64 / n;
  bool found = false;
  for (uint32_t gr = 1; gr <= nsg; gr *= 2) {
    const uint32_t gc = nsg / gr;
    if (nsg % gr || rows % gr || cols % gc) continue;
    const uint32_t br = rows / gr, bc = cols / gc;
    if (!found || br + bc < out->br + out->bc) *out = {m, n, k, gr, br, bc}, found = true;
  }
  return found;
}

std::string coopmat_json(const device_desc &d) {
  if (!d.coopmat_khr) return "null";
  const device_desc::coopmat_shape &c = d.khr;
  return "{\"m\":" + std::to_string(c.m) + ",\"n\":" + std::to_string(c.n) + ",\"k\":" + std::to_string(c.k) + ",\"gr\":" + std::to_string(c.gr) +
         ",\"br\":" + std::to_string(c.br) + ",\"bc\":" + std::to_string(c.bc) + "}";
}

namespace {

void describe(runtime &rt, VkPhysicalDevice pd, device_desc *d) {
  const api &vk = rt.vk;
  d->handle = pd;
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  sub.pNext = &drv;
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &sub;
  vk.GetPhysicalDeviceProperties2(pd, &props);
  d->name = props.properties.deviceName;
  d->driver = drv.driverName;
  d->type = props.properties.deviceType;
  d->api_version = props.properties.apiVersion;
  d->vendor_id = props.properties.vendorID;
  d->device_id = props.properties.deviceID;
  d->subgroup_size = sub.subgroupSize;
  d->subgroup_arithmetic = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  d->max_workgroup_invocations = props.properties.limits.maxComputeWorkGroupInvocations;
  d->max_storage_buffer_range = props.properties.limits.maxStorageBufferRange;
  d->max_shared_bytes = props.properties.limits.maxComputeSharedMemorySize;

  uint32_t n_ext = 0;
  vk.EnumerateDeviceExtensionProperties(pd, nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  vk.EnumerateDeviceExtensionProperties(pd, nullptr, &n_ext, exts.data());
  // Integer dot products: the extension, or Vulkan 1.3 core where both the device and the instance (the API version
  // the runtime asks for) have 1.3; the feature bit decides.
  d->integer_dot_ext = has_ext(exts, "VK_KHR_shader_integer_dot_product");
  const bool dot_core = VK_API_VERSION_MINOR(d->api_version) >= 3 && VK_API_VERSION_MINOR(rt.api_version) >= 3;
  d->cooperative_matrix = has_ext(exts, "VK_KHR_cooperative_matrix");
  const bool coop_khr_ext = d->cooperative_matrix && vk.GetPhysicalDeviceCooperativeMatrixPropertiesKHR;
  d->memory_budget = has_ext(exts, "VK_EXT_memory_budget");

  VkPhysicalDeviceShaderFloat16Int8Features f16i8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  VkPhysicalDevice8BitStorageFeatures s8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
  f16i8.pNext = &s16;
  s16.pNext = &s8;
  VkPhysicalDeviceShaderIntegerDotProductFeatures idot{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  if (d->integer_dot_ext || dot_core) s8.pNext = &idot;
  // The cooperative-matrix build declares the Vulkan memory model (GL_KHR_cooperative_matrix needs it): core in 1.2.
  const bool vmm_core = VK_API_VERSION_MINOR(d->api_version) >= 2 && VK_API_VERSION_MINOR(rt.api_version) >= 2;
  coopmat_features_khr coop_khr{kStructCoopmatFeaturesKHR};
  VkPhysicalDeviceVulkanMemoryModelFeatures vmm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
  if (coop_khr_ext && vmm_core) coop_khr.pNext = f16i8.pNext, vmm.pNext = &coop_khr, f16i8.pNext = &vmm;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &f16i8;
  vk.GetPhysicalDeviceFeatures2(pd, &feats);
  d->integer_dot = (d->integer_dot_ext || dot_core) && idot.shaderIntegerDotProduct;
  if (d->integer_dot) {
    VkPhysicalDeviceShaderIntegerDotProductProperties idp{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    p2.pNext = &idp;
    vk.GetPhysicalDeviceProperties2(pd, &p2);
    d->integer_dot_accelerated = idp.integerDotProduct4x8BitPackedSignedAccelerated;
  }
  d->fp16 = f16i8.shaderFloat16;
  // The KHR configurations: f16 x f16 + f32 at subgroup scope, whose products tile the 64 x 64 prompt tile with this
  // subgroup size; the largest product first, then the most even split of a subgroup's products (fewer loads).
  if (coop_khr_ext && vmm_core && coop_khr.cooperativeMatrix && vmm.vulkanMemoryModel && d->fp16 && d->max_shared_bytes >= kCoopmatSharedBytes) {
    uint32_t n_cfg = 0;
    vk.GetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &n_cfg, nullptr);
    std::vector<coopmat_props_khr> cfg(n_cfg, coopmat_props_khr{kStructCoopmatPropsKHR});
    if (n_cfg) vk.GetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &n_cfg, cfg.data());
    cfg.resize(std::min<size_t>(n_cfg, cfg.size()));
    for (const coopmat_props_khr &c : cfg) {
      device_desc::coopmat_shape s;
      if (c.AType != 0 || c.BType != 0 || c.CType != 1 || c.ResultType != 1 || c.scope != 3 || c.saturatingAccumulation) continue;
      if (!coopmat_grid(c.MSize, c.NSize, c.KSize, d->subgroup_size, &s)) continue;
      const uint64_t size = (uint64_t)s.m * s.n * s.k, best = (uint64_t)d->khr.m * d->khr.n * d->khr.k;
      if (!d->coopmat_khr || size > best || (size == best && s.br + s.bc < d->khr.br + d->khr.bc)) d->khr = s, d->coopmat_khr = true;
    }
  }
  d->int8 = f16i8.shaderInt8;
  d->storage16 = s16.storageBuffer16BitAccess;
  d->storage8 = s8.storageBuffer8BitAccess;

  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  VkPhysicalDeviceMemoryProperties2 mem{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
  if (d->memory_budget) mem.pNext = &budget;
  vk.GetPhysicalDeviceMemoryProperties2(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryProperties.memoryHeapCount; h++) {
    if (!(mem.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)) continue;
    d->device_local_bytes += mem.memoryProperties.memoryHeaps[h].size;
    if (d->memory_budget && budget.heapBudget[h] > budget.heapUsage[h]) d->device_local_free += budget.heapBudget[h] - budget.heapUsage[h];
  }

  uint32_t n_fam = 0;
  vk.GetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, nullptr);
  std::vector<VkQueueFamilyProperties> fams(n_fam);
  vk.GetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, fams.data());
  // A compute-only family first (async compute on discrete GPUs), else any with compute.
  for (uint32_t i = 0; i < n_fam && d->compute_queue_family == UINT32_MAX; i++)
    if ((fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(fams[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) d->compute_queue_family = i;
  for (uint32_t i = 0; i < n_fam && d->compute_queue_family == UINT32_MAX; i++)
    if (fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT) d->compute_queue_family = i;

  // The score: discrete > integrated > virtual; a CPU device (lavapipe, SwiftShader) is never chosen over the CPU
  // backend unless asked for by name. More device-local memory breaks ties.
  const uint64_t gib = d->device_local_bytes >> 30;
  if (d->compute_queue_family == UINT32_MAX) {
    d->score = 0;
    d->score_why = "no compute queue";
  } else if (VK_API_VERSION_MINOR(d->api_version) < 1 && VK_API_VERSION_MAJOR(d->api_version) == 1) {
    d->score = 0;
    d->score_why = "Vulkan 1.0 only (1.1 is needed: subgroups, 16-bit storage)";
  } else if (d->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
    d->score = 0;
    d->score_why = "a CPU device: the CPU backend is faster; used only when asked for by name";
  } else {
    const int32_t base = d->type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? 3000 : d->type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? 2000 : 1000;
    d->score = base + (int32_t)(gib > 999 ? 999 : gib);
    d->score_why = std::string(type_name(d->type)) + " GPU";
  }
}

runtime *make_runtime() {
  auto *rt = new runtime();
  rt->lib = open_library(&rt->loader_path, &rt->error);
  if (!rt->lib) return rt;
  api &vk = rt->vk;
  vk.GetInstanceProcAddr = (PFN_vkGetInstanceProcAddr)symbol(rt->lib, "vkGetInstanceProcAddr");
  if (!vk.GetInstanceProcAddr) {
    rt->error = "the Vulkan loader " + rt->loader_path + " has no vkGetInstanceProcAddr";
    return rt;
  }
#define GLOBAL(n) vk.n = (PFN_vk##n)vk.GetInstanceProcAddr(VK_NULL_HANDLE, "vk" #n)
  GLOBAL(CreateInstance);
  GLOBAL(EnumerateInstanceVersion);
#undef GLOBAL
  if (!vk.CreateInstance) {
    rt->error = "the Vulkan loader has no vkCreateInstance";
    return rt;
  }
  rt->instance_version = VK_API_VERSION_1_0;
  if (vk.EnumerateInstanceVersion) vk.EnumerateInstanceVersion(&rt->instance_version);
  if (VK_API_VERSION_MINOR(rt->instance_version) < 1 && VK_API_VERSION_MAJOR(rt->instance_version) == 1) {
    rt->error = "the Vulkan loader supports only Vulkan 1.0 (1.1 is needed)";
    return rt;
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "open-autoglm";
  app.pEngineName = "open-autoglm";
  // Up to 1.3 (integer dot products in core); a device's effective version is the lower of this and its own.
  const uint32_t minor = VK_API_VERSION_MINOR(rt->instance_version);
  rt->api_version = VK_MAKE_API_VERSION(0, 1, minor >= 3 ? 3 : minor >= 2 ? 2 : 1, 0);
  app.apiVersion = rt->api_version;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
#ifdef __APPLE__
  // Through the Vulkan loader, MoltenVK's devices are listed only with portability enumeration; MoltenVK opened
  // directly may not offer the extension, so it is asked for only where the implementation lists it.
  const char *exts[] = {"VK_KHR_portability_enumeration"};
  auto enumerate_exts = (PFN_vkEnumerateInstanceExtensionProperties)vk.GetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceExtensionProperties");
  uint32_t n_inst_ext = 0;
  if (enumerate_exts) enumerate_exts(nullptr, &n_inst_ext, nullptr);
  std::vector<VkExtensionProperties> inst_exts(n_inst_ext);
  if (enumerate_exts && n_inst_ext) enumerate_exts(nullptr, &n_inst_ext, inst_exts.data());
  inst_exts.resize(n_inst_ext);
  if (has_ext(inst_exts, exts[0])) {
    ci.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    ci.enabledExtensionCount = 1;
    ci.ppEnabledExtensionNames = exts;
  }
#endif
  VkResult r = vk.CreateInstance(&ci, nullptr, &rt->instance);
  if (r != VK_SUCCESS) {
    rt->error = "vkCreateInstance failed (VkResult " + std::to_string((int)r) + "): no Vulkan driver installed?";
    rt->instance = VK_NULL_HANDLE;
    return rt;
  }
  VkInstance inst = rt->instance;
#define INST(n) vk.n = (PFN_vk##n)vk.GetInstanceProcAddr(inst, "vk" #n)
  INST(DestroyInstance);
  INST(EnumeratePhysicalDevices);
  INST(GetPhysicalDeviceProperties2);
  INST(GetPhysicalDeviceFeatures2);
  INST(GetPhysicalDeviceMemoryProperties2);
  INST(GetPhysicalDeviceQueueFamilyProperties);
  vk.GetPhysicalDeviceCooperativeMatrixPropertiesKHR = (PFN_coopmat_props_khr)vk.GetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  INST(EnumerateDeviceExtensionProperties);
  INST(CreateDevice);
  INST(GetDeviceProcAddr);
  INST(DestroyDevice); INST(GetDeviceQueue); INST(CreateBuffer); INST(DestroyBuffer); INST(GetBufferMemoryRequirements);
  INST(AllocateMemory); INST(FreeMemory); INST(BindBufferMemory); INST(MapMemory); INST(UnmapMemory);
  INST(CreateShaderModule); INST(DestroyShaderModule); INST(CreateDescriptorSetLayout); INST(DestroyDescriptorSetLayout);
  INST(CreatePipelineLayout); INST(DestroyPipelineLayout); INST(CreateComputePipelines); INST(DestroyPipeline);
  INST(CreateDescriptorPool); INST(DestroyDescriptorPool); INST(AllocateDescriptorSets); INST(FreeDescriptorSets);
  INST(UpdateDescriptorSets); INST(CreateCommandPool); INST(DestroyCommandPool); INST(AllocateCommandBuffers);
  INST(BeginCommandBuffer); INST(EndCommandBuffer); INST(CmdBindPipeline); INST(CmdBindDescriptorSets);
  INST(CmdPushConstants); INST(CmdDispatch); INST(CmdCopyBuffer); INST(CmdPipelineBarrier); INST(QueueSubmit);
  INST(QueueWaitIdle); INST(ResetCommandPool); INST(CreateFence); INST(DestroyFence); INST(WaitForFences);
  INST(ResetFences); INST(GetFenceStatus);
#undef INST
  if (!vk.QueueSubmit || !vk.CreateComputePipelines || !vk.FreeDescriptorSets || !vk.WaitForFences) {
    rt->error = "the Vulkan loader lacks device entry points";
    return rt;
  }
  if (!vk.EnumeratePhysicalDevices || !vk.GetPhysicalDeviceProperties2 || !vk.GetPhysicalDeviceFeatures2 ||
      !vk.GetPhysicalDeviceMemoryProperties2 || !vk.CreateDevice || !vk.GetDeviceProcAddr) {
    rt->error = "the Vulkan instance lacks 1.1 entry points";
    return rt;
  }
  uint32_t n = 0;
  if (vk.EnumeratePhysicalDevices(inst, &n, nullptr) != VK_SUCCESS || n == 0) {
    rt->error = "Vulkan found no physical device";
    return rt;
  }
  std::vector<VkPhysicalDevice> pds(n);
  vk.EnumeratePhysicalDevices(inst, &n, pds.data());
  rt->devices.resize(n);
  for (uint32_t i = 0; i < n; i++) describe(*rt, pds[i], &rt->devices[i]);
  return rt;
}

} // namespace

const runtime &get_runtime() {
  static runtime *rt = make_runtime(); // kept for the process's life (drivers dislike teardown at exit)
  return *rt;
}

bool plain_forced() {
  const char *v = std::getenv("OPEN_AUTOGLM_VULKAN_PLAIN");
  return v && *v && std::strcmp(v, "0") != 0;
}

paths enabled_paths(const device_desc &d) {
  paths p;
  if (plain_forced()) return p;
  p.subgroup = d.subgroup_arithmetic;
  p.integer_dot = d.integer_dot;
  p.fp16 = d.fp16;
  p.coopmat = d.coopmat_khr && has_khr_tiles(); // the module carries them where its build's glslc knew the extension
  if (const char *e = std::getenv("OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE"); e && std::strcmp(e, "1") == 0 && d.fp16)
    p.coopmat = p.coopmat_emulated = true;
  if (const char *v = std::getenv("OPEN_AUTOGLM_VULKAN_PATHS")) {
    const std::string list = "," + std::string(v) + ",";
    auto named = [&](const char *n) { return list.find("," + std::string(n) + ",") != std::string::npos; };
    p.subgroup = p.subgroup && named("subgroup");
    p.integer_dot = p.integer_dot && named("integer-dot");
    p.fp16 = p.fp16 && named("fp16");
    p.coopmat = p.coopmat && named("coopmat");
  }
  p.coopmat_emulated = p.coopmat_emulated && p.coopmat;
  return p;
}

paths paths_of(const device_desc &d) { return {d.use_subgroup, d.use_integer_dot, d.use_fp16, d.use_coopmat, d.coopmat_emulated}; }

std::string paths_text(const paths &p) {
  std::string s;
  for (auto [on, name] : {std::pair<bool, const char *>{p.subgroup, "subgroup"}, {p.integer_dot, "integer dot"}, {p.fp16, "fp16"}, {p.coopmat, p.coopmat_emulated ? "cooperative matrix (emulated)" : "cooperative matrix"}})
    if (on) s += (s.empty() ? "" : ", ") + std::string(name);
  return s.empty() ? "plain" : s;
}

// ---- a device with a compute queue -----------------------------------------------------------------------------

std::unique_ptr<device> device::open(int index, std::string *error) {
  const runtime &rt = get_runtime();
  if (!rt.error.empty()) return *error = rt.error, nullptr;
  if (index < 0 || index >= (int)rt.devices.size()) return *error = "no Vulkan device " + std::to_string(index), nullptr;
  std::unique_ptr<device> d(new device());
  d->vk_ = &rt.vk;
  d->desc_ = rt.devices[(size_t)index];
  const api &vk = rt.vk;
  if (d->desc_.compute_queue_family == UINT32_MAX) return *error = d->desc_.name + " has no compute queue", nullptr;
  const float prio = 1.0f;
  VkDeviceQueueCreateInfo q{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  q.queueFamilyIndex = d->desc_.compute_queue_family;
  q.queueCount = 1;
  q.pQueuePriorities = &prio;
  VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  ci.queueCreateInfoCount = 1;
  ci.pQueueCreateInfos = &q;
  std::vector<const char *> enabled;
#ifdef __APPLE__
  // A portability implementation (MoltenVK) that lists VK_KHR_portability_subset must have it enabled.
  uint32_t n_ext = 0;
  vk.EnumerateDeviceExtensionProperties(d->desc_.handle, nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  vk.EnumerateDeviceExtensionProperties(d->desc_.handle, nullptr, &n_ext, exts.data());
  exts.resize(n_ext);
  if (has_ext(exts, "VK_KHR_portability_subset")) enabled.push_back("VK_KHR_portability_subset");
#endif
  // The optional paths: integer dot products (the matmul_dot kernels read packed int8x4 from uint words, so neither
  // shaderInt8 nor 8-bit storage is needed); subgroup arithmetic needs nothing enabled (Vulkan 1.1 core).
  const paths use = enabled_paths(d->desc_);
  // f16 prompt tiles: shaderFloat16 (f16 values in shared memory); cooperative matrices: the KHR extension, its
  // feature and the Vulkan memory model (their tiles are f16 too).
  VkPhysicalDeviceShaderIntegerDotProductFeatures idot{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  void **tail = &feats.pNext;
  if (use.integer_dot) {
    idot.shaderIntegerDotProduct = VK_TRUE;
    *tail = &idot, tail = &idot.pNext;
    if (d->desc_.integer_dot_ext) enabled.push_back("VK_KHR_shader_integer_dot_product");
  }
  if (use.fp16 || use.coopmat) {
    f16.shaderFloat16 = VK_TRUE;
    *tail = &f16, tail = &f16.pNext;
    // Core in 1.2; a 1.1 device reports the feature only through its extension, which must then be enabled.
    if (VK_API_VERSION_MINOR(d->desc_.api_version) < 2 || VK_API_VERSION_MINOR(rt.api_version) < 2) enabled.push_back("VK_KHR_shader_float16_int8");
  }
  VkPhysicalDeviceVulkanMemoryModelFeatures vmm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
  coopmat_features_khr coop_khr{kStructCoopmatFeaturesKHR};
  if (use.coopmat && !use.coopmat_emulated) {
    vmm.vulkanMemoryModel = VK_TRUE;
    coop_khr.cooperativeMatrix = VK_TRUE;
    *tail = &vmm, tail = &vmm.pNext;
    *tail = &coop_khr, tail = &coop_khr.pNext;
    enabled.push_back("VK_KHR_cooperative_matrix");
  }
  if (feats.pNext) ci.pNext = &feats;
  ci.enabledExtensionCount = (uint32_t)enabled.size();
  ci.ppEnabledExtensionNames = enabled.empty() ? nullptr : enabled.data();
  VkResult r = vk.CreateDevice(d->desc_.handle, &ci, nullptr, &d->dev_);
  if (r != VK_SUCCESS) return *error = "vkCreateDevice failed (VkResult " + std::to_string((int)r) + ")", nullptr;
  d->desc_.use_subgroup = use.subgroup;
  d->desc_.use_integer_dot = use.integer_dot;
  d->desc_.use_fp16 = use.fp16;
  d->desc_.use_coopmat = use.coopmat;
  d->desc_.coopmat_emulated = use.coopmat_emulated;
  vk.GetDeviceQueue(d->dev_, d->desc_.compute_queue_family, 0, &d->queue_);
  VkPhysicalDeviceMemoryProperties2 mp{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
  vk.GetPhysicalDeviceMemoryProperties2(d->desc_.handle, &mp);
  d->mem_props_ = mp.memoryProperties;
  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.queueFamilyIndex = d->desc_.compute_queue_family;
  if (vk.CreateCommandPool(d->dev_, &pci, nullptr, &d->pool_) != VK_SUCCESS) return *error = "vkCreateCommandPool failed", nullptr;
  VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cai.commandPool = d->pool_;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 1;
  if (vk.AllocateCommandBuffers(d->dev_, &cai, &d->cmd_) != VK_SUCCESS) return *error = "vkAllocateCommandBuffers failed", nullptr;
  VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1024};
  VkDescriptorPoolCreateInfo dci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  dci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
  dci.maxSets = 256;
  dci.poolSizeCount = 1;
  dci.pPoolSizes = &ps;
  if (vk.CreateDescriptorPool(d->dev_, &dci, nullptr, &d->dpool_) != VK_SUCCESS) return *error = "vkCreateDescriptorPool failed", nullptr;
  return d;
}

device::~device() {
  if (!dev_) return;
  vk_->QueueWaitIdle(queue_);
  if (dpool_) vk_->DestroyDescriptorPool(dev_, dpool_, nullptr);
  if (pool_) vk_->DestroyCommandPool(dev_, pool_, nullptr);
  vk_->DestroyDevice(dev_, nullptr);
}

bool device::create_buffer(uint64_t bytes, bool host_visible, buffer *out, std::string *error) {
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = bytes ? bytes : 4;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  if (vk_->CreateBuffer(dev_, &bi, nullptr, &out->buf) != VK_SUCCESS) return *error = "vkCreateBuffer failed", false;
  VkMemoryRequirements req;
  vk_->GetBufferMemoryRequirements(dev_, out->buf, &req);
  const VkMemoryPropertyFlags want =
      host_visible ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  uint32_t type = UINT32_MAX;
  for (uint32_t i = 0; i < mem_props_.memoryTypeCount && type == UINT32_MAX; i++)
    if ((req.memoryTypeBits & (1u << i)) && (mem_props_.memoryTypes[i].propertyFlags & want) == want) type = i;
  if (type == UINT32_MAX) {
    vk_->DestroyBuffer(dev_, out->buf, nullptr);
    out->buf = VK_NULL_HANDLE;
    return *error = "no suitable memory type", false;
  }
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = type;
  if (vk_->AllocateMemory(dev_, &ai, nullptr, &out->mem) != VK_SUCCESS) {
    vk_->DestroyBuffer(dev_, out->buf, nullptr);
    out->buf = VK_NULL_HANDLE;
    return *error = "out of device memory (" + std::to_string(bytes) + " bytes)", false;
  }
  vk_->BindBufferMemory(dev_, out->buf, out->mem, 0);
  out->size = bytes;
  if (host_visible && vk_->MapMemory(dev_, out->mem, 0, VK_WHOLE_SIZE, 0, &out->mapped) != VK_SUCCESS) {
    destroy_buffer(out);
    return *error = "vkMapMemory failed", false;
  }
  return true;
}

void device::destroy_buffer(buffer *b) {
  if (b->mapped) vk_->UnmapMemory(dev_, b->mem);
  if (b->buf) vk_->DestroyBuffer(dev_, b->buf, nullptr);
  if (b->mem) vk_->FreeMemory(dev_, b->mem, nullptr);
  *b = buffer{};
}

bool device::create_pipeline(const uint32_t *spirv, size_t bytes, uint32_t n_buffers, uint32_t push_bytes, pipeline *out, std::string *error,
                             const uint32_t *spec, uint32_t n_spec) {
  VkShaderModuleCreateInfo si{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  si.codeSize = bytes;
  si.pCode = spirv;
  if (vk_->CreateShaderModule(dev_, &si, nullptr, &out->module) != VK_SUCCESS) return *error = "vkCreateShaderModule failed", false;
  std::vector<VkDescriptorSetLayoutBinding> bind(n_buffers);
  for (uint32_t i = 0; i < n_buffers; i++) bind[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo dl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dl.bindingCount = n_buffers;
  dl.pBindings = bind.data();
  if (vk_->CreateDescriptorSetLayout(dev_, &dl, nullptr, &out->dsl) != VK_SUCCESS) return *error = "vkCreateDescriptorSetLayout failed", false;
  VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &out->dsl;
  pl.pushConstantRangeCount = push_bytes ? 1 : 0;
  pl.pPushConstantRanges = &pr;
  if (vk_->CreatePipelineLayout(dev_, &pl, nullptr, &out->layout) != VK_SUCCESS) return *error = "vkCreatePipelineLayout failed", false;
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  std::vector<VkSpecializationMapEntry> entries(n_spec);
  for (uint32_t i = 0; i < n_spec; i++) entries[i] = {i, i * 4u, 4};
  const VkSpecializationInfo si_spec{n_spec, entries.data(), n_spec * 4u, spec};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_COMPUTE_BIT, out->module, "main", n_spec ? &si_spec : nullptr};
  ci.layout = out->layout;
  if (vk_->CreateComputePipelines(dev_, VK_NULL_HANDLE, 1, &ci, nullptr, &out->pipe) != VK_SUCCESS) return *error = "vkCreateComputePipelines failed", false;
  out->n_buffers = n_buffers;
  out->push_bytes = push_bytes;
  return true;
}

void device::destroy_pipeline(pipeline *p) {
  if (p->pipe) vk_->DestroyPipeline(dev_, p->pipe, nullptr);
  if (p->layout) vk_->DestroyPipelineLayout(dev_, p->layout, nullptr);
  if (p->dsl) vk_->DestroyDescriptorSetLayout(dev_, p->dsl, nullptr);
  if (p->module) vk_->DestroyShaderModule(dev_, p->module, nullptr);
  *p = pipeline{};
}

bool device::submit(VkCommandBuffer cmd, VkFence fence, std::string *error) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  std::lock_guard<std::mutex> lock(queue_mu_);
  const VkResult r = vk_->QueueSubmit(queue_, 1, &si, fence);
  if (r != VK_SUCCESS) return *error = "queue submission failed (VkResult " + std::to_string((int)r) + ")", false;
  return true;
}

bool device::submit_and_wait(std::string *error) {
  std::lock_guard<std::mutex> lock(queue_mu_);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd_;
  VkResult r = vk_->QueueSubmit(queue_, 1, &si, VK_NULL_HANDLE);
  if (r == VK_SUCCESS) r = vk_->QueueWaitIdle(queue_);
  vk_->ResetCommandPool(dev_, pool_, 0);
  if (r != VK_SUCCESS) return *error = "queue submission failed (VkResult " + std::to_string((int)r) + ")", false;
  return true;
}

bool device::dispatch(const pipeline &p, const buffer *const *bufs, const void *push, uint32_t gx, uint32_t gy, uint32_t gz, std::string *error) {
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = dpool_;
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &p.dsl;
  VkDescriptorSet set;
  if (vk_->AllocateDescriptorSets(dev_, &ai, &set) != VK_SUCCESS) return *error = "vkAllocateDescriptorSets failed", false;
  std::vector<VkDescriptorBufferInfo> infos(p.n_buffers);
  std::vector<VkWriteDescriptorSet> writes(p.n_buffers);
  for (uint32_t i = 0; i < p.n_buffers; i++) {
    infos[i] = {bufs[i]->buf, 0, VK_WHOLE_SIZE};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, nullptr, set, i, 0, 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, nullptr, &infos[i], nullptr};
  }
  vk_->UpdateDescriptorSets(dev_, p.n_buffers, writes.data(), 0, nullptr);
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  vk_->BeginCommandBuffer(cmd_, &bi);
  vk_->CmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipe);
  vk_->CmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  if (p.push_bytes) vk_->CmdPushConstants(cmd_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p.push_bytes, push);
  vk_->CmdDispatch(cmd_, gx, gy, gz);
  vk_->EndCommandBuffer(cmd_);
  const bool ok = submit_and_wait(error);
  vk_->FreeDescriptorSets(dev_, dpool_, 1, &set);
  return ok;
}

bool device::copy(const buffer &src, const buffer &dst, uint64_t bytes, std::string *error) {
  return copy(src, 0, dst, 0, bytes, error);
}

bool device::copy_many(const buffer &src, const std::vector<std::pair<VkBuffer, VkBufferCopy>> &regions, std::string *error) {
  if (regions.empty()) return true;
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  vk_->BeginCommandBuffer(cmd_, &bi);
  for (const auto &r : regions) vk_->CmdCopyBuffer(cmd_, src.buf, r.first, 1, &r.second);
  vk_->EndCommandBuffer(cmd_);
  return submit_and_wait(error);
}

bool device::copy(const buffer &src, uint64_t src_off, const buffer &dst, uint64_t dst_off, uint64_t bytes, std::string *error) {
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  vk_->BeginCommandBuffer(cmd_, &bi);
  VkBufferCopy region{src_off, dst_off, bytes};
  vk_->CmdCopyBuffer(cmd_, src.buf, dst.buf, 1, &region);
  vk_->EndCommandBuffer(cmd_);
  return submit_and_wait(error);
}

} // namespace aglm_vk
