// The host-built CUDA kernels by name (emu-kernels.cpp).
#pragma once

#include <functional>

struct aglm_emu_kernel {
  const char *name;
  std::function<void(void **params)> run; // one CUDA thread's run of the kernel (the scheduler sets the indices)
};

const aglm_emu_kernel *aglm_emu_find_kernel(const char *name);
