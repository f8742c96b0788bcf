// The CUDA backend's kernels built for the host (cuda-emu.h gives the CUDA pieces a host meaning), and a table that
// finds each extern "C" kernel by name and calls it with a cuLaunchKernel parameter array: parameter i is read from
// params[i] as the kernel's i-th parameter type, as the GPU reads the same array.
#include "cuda-emu.h"

#include <cstddef>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>

#include "backends/cuda/kernels/aglm-cuda.cu"
#include "emu-kernels.h"

namespace {

template <typename... A, std::size_t... I> void invoke(void (*fn)(A...), void **params, std::index_sequence<I...>) {
  fn(*static_cast<std::remove_cv_t<std::remove_reference_t<A>> *>(params[I])...);
}
template <typename... A> aglm_emu_kernel entry(const char *name, void (*fn)(A...)) {
  return {name, [fn](void **params) { invoke(fn, params, std::index_sequence_for<A...>{}); }};
}

#define AGLM_EMU_E(f) entry(#f, f)
#define AGLM_EMU_TYPE_ENTRIES(name, T) AGLM_EMU_E(aglm_mmv_##name), AGLM_EMU_E(aglm_mm_##name), AGLM_EMU_E(aglm_get_rows_##name),
const aglm_emu_kernel kKernels[] = {
    AGLM_PER_TYPE(AGLM_EMU_TYPE_ENTRIES) AGLM_EMU_E(aglm_quantize_q8_1), AGLM_EMU_E(aglm_rms_norm), AGLM_EMU_E(aglm_layer_norm),
    AGLM_EMU_E(aglm_eltwise), AGLM_EMU_E(aglm_rope), AGLM_EMU_E(aglm_kv_store), AGLM_EMU_E(aglm_attn_split), AGLM_EMU_E(aglm_attn_combine),
    AGLM_EMU_E(aglm_gather_rows), AGLM_EMU_E(aglm_merge_rows), AGLM_EMU_E(aglm_embed_interp), AGLM_EMU_E(aglm_mmf_f32),
    AGLM_EMU_E(aglm_mmf_f16), AGLM_EMU_E(aglm_mmf_bf16),
};

} // namespace

const aglm_emu_kernel *aglm_emu_find_kernel(const char *name) {
  for (const aglm_emu_kernel &k : kKernels)
    if (std::strcmp(k.name, name) == 0) return &k;
  return nullptr;
}
