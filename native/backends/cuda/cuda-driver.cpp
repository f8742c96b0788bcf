// The CUDA driver opened at run time (see cuda-driver.h): the library, cuInit, and device discovery.
#include "backends/cuda/cuda-driver.h"

#include <cstdlib>
#include <type_traits>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace aglm_cuda {

namespace {

void *open_handle(const char *name) {
#ifdef _WIN32
  return (void *)LoadLibraryA(name);
#else
  return dlopen(name, RTLD_NOW | RTLD_LOCAL);
#endif
}

void *symbol(void *lib, const char *name) {
#ifdef _WIN32
  return (void *)GetProcAddress((HMODULE)lib, name);
#else
  return dlsym(lib, name);
#endif
}

// OPEN_AUTOGLM_CUDA_LIBRARY names the driver library to use (tests point it at a missing file to prove the fallback);
// otherwise the driver's own soname. The unversioned libcuda.so is only a development symlink, so it is not tried.
void *open_library(std::string *path, std::string *error) {
  if (const char *env = std::getenv("OPEN_AUTOGLM_CUDA_LIBRARY")) {
    if (void *h = open_handle(env)) return *path = env, h;
    *error = std::string("the CUDA driver library named by OPEN_AUTOGLM_CUDA_LIBRARY (") + env + ") could not be opened";
    return nullptr;
  }
#ifdef _WIN32
  const char *name = "nvcuda.dll";
#else
  const char *name = "libcuda.so.1";
#endif
  if (void *h = open_handle(name)) return *path = name, h;
  *error = std::string("no CUDA driver: ") + name + " could not be opened (install the NVIDIA driver)";
  return nullptr;
}

// Resolves every entry point; the first one missing is the error (a driver too old for this backend).
bool resolve(void *lib, api *cu, std::string *missing) {
  bool ok = true;
  auto get = [&](auto *fn, const char *name) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(symbol(lib, name));
    if (!*fn && ok) ok = false, *missing = name;
  };
  get(&cu->Init, "cuInit");
  get(&cu->DriverGetVersion, "cuDriverGetVersion");
  get(&cu->GetErrorString, "cuGetErrorString");
  get(&cu->DeviceGetCount, "cuDeviceGetCount");
  get(&cu->DeviceGet, "cuDeviceGet");
  get(&cu->DeviceGetName, "cuDeviceGetName");
  get(&cu->DeviceGetAttribute, "cuDeviceGetAttribute");
  get(&cu->DeviceTotalMem, "cuDeviceTotalMem_v2");
  get(&cu->DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  get(&cu->CtxPushCurrent, "cuCtxPushCurrent_v2");
  get(&cu->CtxPopCurrent, "cuCtxPopCurrent_v2");
  get(&cu->MemGetInfo, "cuMemGetInfo_v2");
  get(&cu->MemAlloc, "cuMemAlloc_v2");
  get(&cu->MemFree, "cuMemFree_v2");
  get(&cu->MemAllocHost, "cuMemAllocHost_v2");
  get(&cu->MemFreeHost, "cuMemFreeHost");
  get(&cu->MemcpyHtoD, "cuMemcpyHtoD_v2");
  get(&cu->MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  get(&cu->MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  get(&cu->MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
  get(&cu->ModuleLoadData, "cuModuleLoadData");
  get(&cu->ModuleUnload, "cuModuleUnload");
  get(&cu->ModuleGetFunction, "cuModuleGetFunction");
  get(&cu->StreamCreate, "cuStreamCreate");
  get(&cu->StreamDestroy, "cuStreamDestroy_v2");
  get(&cu->StreamSynchronize, "cuStreamSynchronize");
  get(&cu->LaunchKernel, "cuLaunchKernel");
  return ok;
}

void describe(const api &cu, CUdevice dev, device_desc *d) {
  d->handle = dev;
  char name[256] = {0};
  if (cu.DeviceGetName(name, (int)sizeof name - 1, dev) == CUDA_SUCCESS) d->name = name;
  auto attr = [&](int a) {
    int v = 0;
    return cu.DeviceGetAttribute(&v, a, dev) == CUDA_SUCCESS ? v : 0;
  };
  d->cc_major = attr(ATTR_COMPUTE_CAPABILITY_MAJOR);
  d->cc_minor = attr(ATTR_COMPUTE_CAPABILITY_MINOR);
  d->sm_count = attr(ATTR_MULTIPROCESSOR_COUNT);
  d->clock_khz = attr(ATTR_CLOCK_RATE);
  d->memory_clock_khz = attr(ATTR_MEMORY_CLOCK_RATE);
  d->bus_width_bits = attr(ATTR_GLOBAL_MEMORY_BUS_WIDTH);
  d->l2_bytes = attr(ATTR_L2_CACHE_SIZE);
  d->max_shared_optin = attr(ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  d->pci_bus = attr(ATTR_PCI_BUS_ID);
  d->integrated = attr(ATTR_INTEGRATED) != 0;
  size_t total = 0;
  if (cu.DeviceTotalMem(&total, dev) == CUDA_SUCCESS) d->memory_total = total;
}

runtime *make_runtime() {
  auto *rt = new runtime();
  rt->lib = open_library(&rt->library_path, &rt->error);
  if (!rt->lib) return rt;
  std::string missing;
  if (!resolve(rt->lib, &rt->cu, &missing)) {
    rt->error = "the CUDA driver " + rt->library_path + " lacks " + missing + " (a driver too old for this backend)";
    return rt;
  }
  const api &cu = rt->cu;
  CUresult r = cu.Init(0);
  if (r != CUDA_SUCCESS) {
    rt->error = r == CUDA_ERROR_NO_DEVICE ? "the CUDA driver found no device (cuInit: no CUDA-capable device)" : describe_error(cu, "cuInit", r);
    return rt;
  }
  cu.DriverGetVersion(&rt->driver_version);
  int n = 0;
  r = cu.DeviceGetCount(&n);
  if (r != CUDA_SUCCESS) {
    rt->error = describe_error(cu, "cuDeviceGetCount", r);
    return rt;
  }
  if (n <= 0) {
    rt->error = "the CUDA driver found no device";
    return rt;
  }
  for (int i = 0; i < n; i++) {
    CUdevice dev = 0;
    if (cu.DeviceGet(&dev, i) != CUDA_SUCCESS) continue;
    device_desc d;
    describe(cu, dev, &d);
    rt->devices.push_back(d);
  }
  if (rt->devices.empty()) rt->error = "the CUDA driver lists devices but none could be opened";
  return rt;
}

} // namespace

std::string describe_error(const api &cu, const char *call, CUresult r) {
  const char *s = nullptr;
  if (cu.GetErrorString) cu.GetErrorString(r, &s);
  return std::string(call) + " failed: " + (s ? s : "unknown error") + " (error " + std::to_string(r) + ")";
}

const runtime &get_runtime() {
  // Kept for the process's life: drivers dislike being torn down from static destructors at exit.
  static runtime *rt = [] {
    try {
      return make_runtime();
    } catch (...) {
      static runtime failed;
      failed.error = "the CUDA runtime failed to initialise (out of memory)";
      return &failed;
    }
  }();
  return *rt;
}

} // namespace aglm_cuda
