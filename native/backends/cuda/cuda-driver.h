// The CUDA driver API opened at run time (libcuda.so.1 / nvcuda.dll): the few declarations the backend needs, written
// here so that neither the toolkit's headers nor libcuda are needed to build or load the module; the devices with what
// the backend needs to know of them; one context per device (the primary one, shared with any other CUDA user in the
// process). Nothing here throws; every failure is a sentence.
#ifndef AGLM_CUDA_DRIVER_H
#define AGLM_CUDA_DRIVER_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aglm_cuda {

// The driver ABI's types (cuda.h), as the driver defines them on every 64-bit platform.
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

enum : int {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_NO_DEVICE = 100,
  // cuDeviceGetAttribute numbers (cuda.h's CUdevice_attribute; stable across driver versions).
  ATTR_MAX_THREADS_PER_BLOCK = 1,
  ATTR_CLOCK_RATE = 13,        // kHz
  ATTR_MULTIPROCESSOR_COUNT = 16,
  ATTR_INTEGRATED = 18,
  ATTR_PCI_BUS_ID = 33,
  ATTR_MEMORY_CLOCK_RATE = 36, // kHz
  ATTR_GLOBAL_MEMORY_BUS_WIDTH = 37,
  ATTR_L2_CACHE_SIZE = 38,
  ATTR_COMPUTE_CAPABILITY_MAJOR = 75,
  ATTR_COMPUTE_CAPABILITY_MINOR = 76,
  ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
  // cuFuncSetAttribute
  FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
};

// Every driver function the backend calls, resolved by name at run time. The names carry the ABI suffix the driver
// exports (cuMemAlloc_v2 ...): cuda.h maps the plain names onto them with macros, which a dlsym cannot see.
struct api {
  CUresult (*Init)(unsigned flags) = nullptr;
  CUresult (*DriverGetVersion)(int *version) = nullptr;
  CUresult (*GetErrorString)(CUresult e, const char **s) = nullptr;
  CUresult (*DeviceGetCount)(int *n) = nullptr;
  CUresult (*DeviceGet)(CUdevice *d, int ordinal) = nullptr;
  CUresult (*DeviceGetName)(char *name, int len, CUdevice d) = nullptr;
  CUresult (*DeviceGetAttribute)(int *v, int attr, CUdevice d) = nullptr;
  CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice d) = nullptr;                 // _v2
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *c, CUdevice d) = nullptr;
  CUresult (*CtxPushCurrent)(CUcontext c) = nullptr;                               // _v2
  CUresult (*CtxPopCurrent)(CUcontext *c) = nullptr;                               // _v2
  CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total) = nullptr;             // _v2
  CUresult (*MemAlloc)(CUdeviceptr *p, size_t bytes) = nullptr;                    // _v2
  CUresult (*MemFree)(CUdeviceptr p) = nullptr;                                    // _v2
  CUresult (*MemAllocHost)(void **p, size_t bytes) = nullptr;                      // _v2
  CUresult (*MemFreeHost)(void *p) = nullptr;
  CUresult (*MemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes) = nullptr; // _v2
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s) = nullptr; // _v2
  CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream s) = nullptr;       // _v2
  CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) = nullptr; // _v2
  CUresult (*ModuleLoadData)(CUmodule *m, const void *image) = nullptr;
  CUresult (*ModuleUnload)(CUmodule m) = nullptr;
  CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name) = nullptr;
  CUresult (*StreamCreate)(CUstream *s, unsigned flags) = nullptr;
  CUresult (*StreamDestroy)(CUstream s) = nullptr;                                 // _v2
  CUresult (*StreamSynchronize)(CUstream s) = nullptr;
  CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                           unsigned shared_bytes, CUstream s, void **params, void **extra) = nullptr;
};

// What the backend knows of a device.
struct device_desc {
  CUdevice handle = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0; // compute capability
  int sm_count = 0;
  int clock_khz = 0, memory_clock_khz = 0, bus_width_bits = 0;
  int l2_bytes = 0, max_shared_optin = 0, pci_bus = 0;
  bool integrated = false;
  uint64_t memory_total = 0;
  // Peak DRAM bandwidth from the memory clock and bus width (double data rate), bytes/s; 0 when the driver does not
  // report them (newer drivers may leave the clock attributes at 0).
  double bandwidth() const { return 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0); }
};

// The driver, opened and initialised once per process. `error` says what is missing when it is not usable.
struct runtime {
  api cu;
  void *lib = nullptr;
  std::string library_path, error;
  int driver_version = 0; // 1000 * major + 10 * minor
  std::vector<device_desc> devices;
};
const runtime &get_runtime();

// "cuXxx failed: <the driver's message> (error N)".
std::string describe_error(const api &cu, const char *call, CUresult r);

} // namespace aglm_cuda

#endif
