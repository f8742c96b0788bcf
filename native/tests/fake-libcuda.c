/* A stand-in for the NVIDIA driver library (libcuda.so.1) for the tests, which run where no GPU exists: every entry
 * point the CUDA module resolves, one device "open-autoglm fake GPU" of compute capability 9.0 with 80 GiB, and a
 * driver version from FAKE_CUDA_DRIVER_VERSION (1000 * major + 10 * minor; default 11080, CUDA 11.8). It runs no
 * kernel: cuModuleLoadData answers CUDA_ERROR_NO_BINARY_FOR_GPU, and the calls a program would make after it
 * (allocations, copies, launches) answer CUDA_ERROR_NOT_SUPPORTED. Loaded with OPEN_AUTOGLM_CUDA_LIBRARY
 * (test/native/cuda.test.ts); never shipped. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

#define OK 0
#define NOT_SUPPORTED 801
#define NO_BINARY_FOR_GPU 209
#define INVALID_DEVICE 101
#define EXPORT __attribute__((visibility("default")))

static int ctx_token;

EXPORT CUresult cuInit(unsigned flags) { return flags == 0 ? OK : 1; }
EXPORT CUresult cuDriverGetVersion(int *v) {
  const char *e = getenv("FAKE_CUDA_DRIVER_VERSION");
  *v = e && *e ? atoi(e) : 11080;
  return OK;
}
EXPORT CUresult cuGetErrorString(CUresult e, const char **s) {
  *s = e == NO_BINARY_FOR_GPU ? "no kernel image is available for execution on the device (fake driver)" : "not supported by the fake driver";
  return OK;
}
EXPORT CUresult cuDeviceGetCount(int *n) { return *n = 1, OK; }
EXPORT CUresult cuDeviceGet(CUdevice *d, int ordinal) { return ordinal == 0 ? (*d = 0, OK) : INVALID_DEVICE; }
EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
  (void)d;
  strncpy(name, "open-autoglm fake GPU", (size_t)len);
  return OK;
}
EXPORT CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d) {
  (void)d;
  switch (attr) {
    case 75: *v = 9; break;       /* compute capability major */
    case 76: *v = 0; break;       /* minor */
    case 16: *v = 132; break;     /* multiprocessors */
    case 13: *v = 1980000; break; /* clock, kHz */
    case 36: *v = 2619000; break; /* memory clock, kHz */
    case 37: *v = 5120; break;    /* bus width, bits */
    default: *v = 0;
  }
  return OK;
}
EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice d) { return (void)d, *bytes = (size_t)80 << 30, OK; }
EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { return (void)d, *c = &ctx_token, OK; }
EXPORT CUresult cuCtxPushCurrent_v2(CUcontext c) { return (void)c, OK; }
EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *c) { return *c = &ctx_token, OK; }
EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) { return *free_bytes = (size_t)79 << 30, *total = (size_t)80 << 30, OK; }
EXPORT CUresult cuModuleLoadData(CUmodule *m, const void *image) { return (void)m, (void)image, NO_BINARY_FOR_GPU; }
EXPORT CUresult cuModuleUnload(CUmodule m) { return (void)m, OK; }

#define UNSUPPORTED(name, ...) \
  EXPORT CUresult name(__VA_ARGS__) { return NOT_SUPPORTED; }
UNSUPPORTED(cuMemAlloc_v2, CUdeviceptr *p, size_t n)
UNSUPPORTED(cuMemFree_v2, CUdeviceptr p)
UNSUPPORTED(cuMemAllocHost_v2, void **p, size_t n)
UNSUPPORTED(cuMemFreeHost, void *p)
UNSUPPORTED(cuMemcpyHtoD_v2, CUdeviceptr d, const void *s, size_t n)
UNSUPPORTED(cuMemcpyHtoDAsync_v2, CUdeviceptr d, const void *s, size_t n, CUstream st)
UNSUPPORTED(cuMemcpyDtoHAsync_v2, void *d, CUdeviceptr s, size_t n, CUstream st)
UNSUPPORTED(cuMemcpyDtoDAsync_v2, CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
UNSUPPORTED(cuModuleGetFunction, CUfunction *f, CUmodule m, const char *name)
UNSUPPORTED(cuStreamCreate, CUstream *s, unsigned flags)
UNSUPPORTED(cuStreamDestroy_v2, CUstream s)
UNSUPPORTED(cuStreamSynchronize, CUstream s)
UNSUPPORTED(cuLaunchKernel, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared,
            CUstream s, void **params, void **extra)
