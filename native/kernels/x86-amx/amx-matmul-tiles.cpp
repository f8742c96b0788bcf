// The AMX matmul (amx-tiles.h) on the real instructions. Built with -mamx-tile -mamx-int8 -mamx-bf16 plus the
// avx512 flags; called only through the amx table, which is selected only where cpuid reports AMX-INT8 and AMX-BF16,
// XCR0 has the tile state enabled and Linux granted this process XTILEDATA (aglm_cpu_probe asks for it).
#include <immintrin.h>

#define AGLM_AMX_CONFIG(cfg) _tile_loadconfig(cfg)
#define AGLM_AMX_RELEASE() _tile_release()
#define AGLM_AMX_ZERO(t) _tile_zero(t)
#define AGLM_AMX_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#define AGLM_AMX_STORE(t, base, stride) _tile_stored(t, base, stride)
#define AGLM_AMX_DPBSSD(c, a, b) _tile_dpbssd(c, a, b)
#define AGLM_AMX_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)

#include "kernels/x86-amx/amx-tiles.h"

namespace aglm_amx {

void matmul_tiles(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx_tiles_matmul(a, r0, r1); }

} // namespace aglm_amx
