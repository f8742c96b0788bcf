// The CUDA backend's kernels, compiled by nvcc into one fatbin (cubins per architecture and a PTX for newer ones)
// that the module embeds and loads with cuModuleLoadData. Each kernel maps threads onto the shared arithmetic of
// quant.cuh and ops.cuh; the reduction orders are those cuda-host-tests reproduces on the CPU. Every entry point is
// extern "C" so cuModuleGetFunction finds it by its plain name (cuda-backend.cpp lists them).
#include <mma.h>

#include "ops.cuh"
#include "quant.cuh"

namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = AGLM_CU_WARP / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return __shfl_sync(0xffffffffu, v, 0); // lane 0's order (aglm_cu_tree_sum32) for every lane
}
__device__ __forceinline__ int warp_sum_i(int v) {
  for (int off = AGLM_CU_WARP / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = AGLM_CU_WARP / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// The sum of one value per thread over a block of AGLM_CU_ROW_THREADS (aglm_cu_block_sum_host's order).
__device__ float block_sum(float v) {
  __shared__ float warps[AGLM_CU_WARP];
  const int lane = threadIdx.x % AGLM_CU_WARP, warp = threadIdx.x / AGLM_CU_WARP;
  v = warp_sum(v);
  __syncthreads(); // warps[] may still be read by a previous call
  if (lane == 0) warps[warp] = v;
  __syncthreads();
  v = lane < AGLM_CU_ROW_THREADS / AGLM_CU_WARP ? warps[lane] : 0.0f;
  return warp_sum(v);
}

} // namespace

// ---- activations to Q8_1: one warp per block of 32, lane j quantizes value j ------------------------------------

extern "C" __global__ void aglm_quantize_q8_1(const float *x, aglm_block_q8_1 *y, int64_t k, int64_t n_blocks) {
  const int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / AGLM_CU_WARP;
  const int lane = threadIdx.x % AGLM_CU_WARP;
  if (b >= n_blocks) return; // whole warps leave together: n_blocks is per warp
  const int64_t per_row = k / 32, row = b / per_row, c = b % per_row;
  const float v = x[row * k + 32 * c + lane];
  const float d = aglm_cu_q8_scale(warp_max(fabsf(v)));
  const int q = aglm_cu_q8_round(v * aglm_cu_q8_inv(d));
  const int sum = warp_sum_i(q);
  y[b].qs[lane] = (int8_t)q;
  if (lane == 0) {
    y[b].d = aglm_cu_f2h(d);
    y[b].s = aglm_cu_q8_1_sum(sum, d);
  }
}

// ---- decode mat-vec: one warp per weight row, lane L takes chunks L, L+32, ...; one token per grid row --------------

template <int T>
__device__ void mmv(const uint8_t *w, uint64_t w_row_bytes, const void *x, float *y, int64_t m, int64_t k, int64_t y_stride,
                    const float *bias) {
  const int64_t r = (int64_t)blockIdx.x * blockDim.y + threadIdx.y, t = blockIdx.y;
  if (r >= m) return;
  const uint8_t *row = w + r * w_row_bytes;
  const int64_t chunks = k / 32;
  float s = 0.0f;
  if constexpr (T == AGLM_TYPE_F32 || T == AGLM_TYPE_F16 || T == AGLM_TYPE_BF16) {
    const float *xt = (const float *)x + t * k;
    for (int64_t c = threadIdx.x; c < chunks; c += AGLM_CU_WARP) s += aglm_cu_dot_chunk_f<T>(row, c, xt + 32 * c);
    if (threadIdx.x < k % 32) s += aglm_cu_float_at<T>(row, 32 * chunks + threadIdx.x) * xt[32 * chunks + threadIdx.x]; // a partial last chunk
  } else {
    const aglm_block_q8_1 *xt = (const aglm_block_q8_1 *)x + t * chunks;
    for (int64_t c = threadIdx.x; c < chunks; c += AGLM_CU_WARP) s += aglm_cu_dot_chunk_q<T>(row, c, xt + c);
  }
  s = warp_sum(s);
  if (threadIdx.x == 0) y[t * y_stride + r] = bias ? s + bias[r] : s;
}

// ---- prompt matmul on tensor cores: 64 weight rows x 64 tokens per block, K in chunks of 32, f16 in, f32 out -------
// Weights are dequantized into shared memory (the same chunk function as every other path), activations rounded to
// half (clamped to its range, so an outlier saturates rather than turning into inf); 4 warps each own a 32 x 32 tile
// of 2 x 2 wmma fragments (16 x 16 x 16). Not for F32 and BF16 weights, which the host gives the f32 tile (mmf).

#define AGLM_MM_TILE 64
#define AGLM_MM_LD 40 // 32 + 8 halves of padding against bank conflicts (a multiple of 8, as wmma requires)

template <int T>
__device__ void mm(const uint8_t *w, uint64_t w_row_bytes, const float *x, float *y, int64_t m, int64_t n, int64_t k,
                   int64_t y_stride, const float *bias) {
  using namespace nvcuda;
  __shared__ __align__(32) half sa[AGLM_MM_TILE * AGLM_MM_LD];
  __shared__ __align__(32) half sb[AGLM_MM_TILE * AGLM_MM_LD];
  __shared__ __align__(32) float sc[AGLM_MM_TILE * AGLM_MM_TILE];
  const int64_t r0 = (int64_t)blockIdx.x * AGLM_MM_TILE, t0 = (int64_t)blockIdx.y * AGLM_MM_TILE;
  const int tid = threadIdx.x, warp = tid / AGLM_CU_WARP;
  const int wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t c = 0; c < k / 32; c++) {
    if (tid < AGLM_MM_TILE) { // threads 0..63: one weight row's chunk each
      float v[32];
      const int64_t r = r0 + tid;
      if (r < m) aglm_cu_dequant_chunk<T>(w + r * w_row_bytes, c, v);
      for (int j = 0; j < 32; j++) sa[tid * AGLM_MM_LD + j] = __float2half(r < m ? v[j] : 0.0f);
    } else { // threads 64..127: one token's 32 activations each
      const int i = tid - AGLM_MM_TILE;
      const int64_t t = t0 + i;
      for (int j = 0; j < 32; j++) {
        const float v = t < n ? x[t * k + 32 * c + j] : 0.0f;
        sb[i * AGLM_MM_LD + j] = __float2half(isnan(v) ? v : fminf(fmaxf(v, -65504.0f), 65504.0f)); // a NaN stays one
      }
    }
    __syncthreads();
    for (int kk = 0; kk < 32; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb[2];
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], sa + (wm * 32 + i * 16) * AGLM_MM_LD + kk, AGLM_MM_LD);
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], sb + (wn * 32 + j * 16) * AGLM_MM_LD + kk, AGLM_MM_LD);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
  // sc[token][row]: column-major stores put the weight row along the contiguous axis, as y is laid out.
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(sc + (wn * 32 + j * 16) * AGLM_MM_TILE + wm * 32 + i * 16, acc[i][j], AGLM_MM_TILE, wmma::mem_col_major);
  __syncthreads();
  for (int e = tid; e < AGLM_MM_TILE * AGLM_MM_TILE; e += blockDim.x) {
    const int64_t t = t0 + e / AGLM_MM_TILE, r = r0 + e % AGLM_MM_TILE;
    if (t < n && r < m) y[t * y_stride + r] = sc[e] + (bias ? bias[r] : 0.0f);
  }
}

// ---- prompt matmul in f32 for the float types: F32 and BF16 weights (which half would round or overflow) and rows of
// any length. 64 weight rows x 64 tokens per block of 256 threads, K in steps of 32 values through shared memory
// (zero past k); thread (tr, tt) sums rows tr + 16 i and tokens tt + 16 j, i, j < 4, in k order.
#define AGLM_MMF_THREADS 256

template <int T>
__device__ void mmf(const uint8_t *w, uint64_t w_row_bytes, const float *x, float *y, int64_t m, int64_t n, int64_t k, int64_t y_stride,
                    const float *bias) {
  __shared__ float sa[AGLM_MM_TILE][33];
  __shared__ float sb[AGLM_MM_TILE][33];
  const int64_t r0 = (int64_t)blockIdx.x * AGLM_MM_TILE, t0 = (int64_t)blockIdx.y * AGLM_MM_TILE;
  const int tid = threadIdx.x, tr = tid % 16, tt = tid / 16;
  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += 32) {
    for (int e = tid; e < AGLM_MM_TILE * 32; e += AGLM_MMF_THREADS) {
      const int r = e / 32, j = e % 32;
      const int64_t i = k0 + j;
      sa[r][j] = r0 + r < m && i < k ? aglm_cu_float_at<T>(w + (r0 + r) * w_row_bytes, i) : 0.0f;
      sb[r][j] = t0 + r < n && i < k ? x[(t0 + r) * k + i] : 0.0f;
    }
    __syncthreads();
    for (int j = 0; j < 32; j++) {
      float a[4], b[4];
      for (int i = 0; i < 4; i++) a[i] = sa[tr + 16 * i][j], b[i] = sb[tt + 16 * i][j];
      for (int i = 0; i < 4; i++)
        for (int q = 0; q < 4; q++) acc[i][q] += a[i] * b[q];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++)
    for (int q = 0; q < 4; q++) {
      const int64_t r = r0 + tr + 16 * i, t = t0 + tt + 16 * q;
      if (r < m && t < n) y[t * y_stride + r] = acc[i][q] + (bias ? bias[r] : 0.0f);
    }
}

// ---- rows of a table (embeddings, learned positions) by index, one thread per chunk ----------------------------

template <int T>
__device__ void get_rows(const uint8_t *w, uint64_t w_row_bytes, const int32_t *index, float *y, int64_t width, int64_t n) {
  const int64_t t = (int64_t)blockIdx.z * gridDim.y + blockIdx.y, c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n || c >= (width + 31) / 32) return;
  const uint8_t *row = w + (int64_t)index[t] * w_row_bytes;
  if constexpr (T == AGLM_TYPE_F32 || T == AGLM_TYPE_F16 || T == AGLM_TYPE_BF16) {
    if (32 * (c + 1) > width) { // a partial last chunk (float types only)
      for (int64_t i = 32 * c; i < width; i++) y[t * width + i] = aglm_cu_float_at<T>(row, i);
      return;
    }
  }
  aglm_cu_dequant_chunk<T>(row, c, y + t * width + 32 * c);
}

#define AGLM_PER_TYPE(X)                                                                                                \
  X(f32, AGLM_TYPE_F32) X(f16, AGLM_TYPE_F16) X(bf16, AGLM_TYPE_BF16) X(q8_0, AGLM_TYPE_Q8_0) X(q4_0, AGLM_TYPE_Q4_0) \
  X(q4_1, AGLM_TYPE_Q4_1) X(q5_0, AGLM_TYPE_Q5_0) X(q5_1, AGLM_TYPE_Q5_1) X(q4_K, AGLM_TYPE_Q4_K)                    \
  X(q5_K, AGLM_TYPE_Q5_K) X(q6_K, AGLM_TYPE_Q6_K)

#define AGLM_TYPE_KERNELS(name, T)                                                                                      \
  extern "C" __global__ void aglm_mmv_##name(const uint8_t *w, uint64_t wrb, const void *x, float *y, int64_t m,       \
                                             int64_t k, int64_t ys, const float *bias) {                               \
    mmv<T>(w, wrb, x, y, m, k, ys, bias);                                                                               \
  }                                                                                                                     \
  extern "C" __global__ void __launch_bounds__(128) aglm_mm_##name(const uint8_t *w, uint64_t wrb, const float *x,     \
                                                                   float *y, int64_t m, int64_t n, int64_t k,          \
                                                                   int64_t ys, const float *bias) {                    \
    mm<T>(w, wrb, x, y, m, n, k, ys, bias);                                                                             \
  }                                                                                                                     \
  extern "C" __global__ void aglm_get_rows_##name(const uint8_t *w, uint64_t wrb, const int32_t *index, float *y,       \
                                                  int64_t width, int64_t n) {                                          \
    get_rows<T>(w, wrb, index, y, width, n);                                                                            \
  }
AGLM_PER_TYPE(AGLM_TYPE_KERNELS)

#define AGLM_FLOAT_TYPES(X) X(f32, AGLM_TYPE_F32) X(f16, AGLM_TYPE_F16) X(bf16, AGLM_TYPE_BF16)
#define AGLM_MMF_KERNEL(name, T)                                                                                        \
  extern "C" __global__ void __launch_bounds__(AGLM_MMF_THREADS) aglm_mmf_##name(const uint8_t *w, uint64_t wrb,        \
                                                                                const float *x, float *y, int64_t m,   \
                                                                                int64_t n, int64_t k, int64_t ys,      \
                                                                                const float *bias) {                   \
    mmf<T>(w, wrb, x, y, m, n, k, ys, bias);                                                                            \
  }
AGLM_FLOAT_TYPES(AGLM_MMF_KERNEL)

// ---- norms: one block of AGLM_CU_ROW_THREADS per row -------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(AGLM_CU_ROW_THREADS)
    aglm_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps) {
  const float *xr = x + blockIdx.x * n;
  float *yr = y + blockIdx.x * n;
  const float scale = aglm_cu_rms_scale(block_sum(aglm_cu_sumsq_partial(xr, n, threadIdx.x, AGLM_CU_ROW_THREADS)), n, eps);
  for (int64_t i = threadIdx.x; i < n; i += AGLM_CU_ROW_THREADS) yr[i] = aglm_cu_rms_apply(xr[i], scale, w[i]);
}

extern "C" __global__ void __launch_bounds__(AGLM_CU_ROW_THREADS)
    aglm_layer_norm(const float *x, const float *w, const float *b, float *y, int64_t n, float eps) {
  const float *xr = x + blockIdx.x * n;
  float *yr = y + blockIdx.x * n;
  const float mean = aglm_cu_mean(block_sum(aglm_cu_sum_partial(xr, n, threadIdx.x, AGLM_CU_ROW_THREADS)), n);
  const float scale = aglm_cu_ln_scale(block_sum(aglm_cu_centered_sumsq_partial(xr, mean, n, threadIdx.x, AGLM_CU_ROW_THREADS)), n, eps);
  for (int64_t i = threadIdx.x; i < n; i += AGLM_CU_ROW_THREADS) yr[i] = aglm_cu_ln_apply(xr[i], mean, scale, w[i], b, i);
}

// ---- element-wise: op 0 add, 1 mul, 2 silu_mul, 3 gelu, 4 gelu_erf, 5 add_vector (b has `width` elements) ----------

extern "C" __global__ void aglm_eltwise(int op, const float *a, const float *b, float *y, int64_t n, int64_t width) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  switch (op) {
    case 0: y[i] = a[i] + b[i]; break;
    case 1: y[i] = a[i] * b[i]; break;
    case 2: y[i] = aglm_cu_silu_mul(a[i], b[i]); break;
    case 3: y[i] = aglm_cu_gelu(a[i]); break;
    case 4: y[i] = aglm_cu_gelu_erf(a[i]); break;
    default: y[i] = a[i] + b[i % width]; break;
  }
}

// ---- rope: one thread per (token, head, dimension); the thread of a pair's first index rotates the pair ------------

extern "C" __global__ void aglm_rope(const float *x, float *y, const float *cos_sin, int64_t n_tokens, int64_t heads, int64_t hd,
                                     int64_t n_rot, int mode) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n_tokens * heads * hd) return;
  const int64_t d = e % hd, head = e / hd, t = head / heads;
  const float *xh = x + head * hd;
  float *yh = y + head * hd;
  const int64_t half = n_rot / 2;
  if (d >= n_rot) {
    yh[d] = xh[d];
    return;
  }
  const bool first = mode == 0 ? d % 2 == 0 : d < half;
  if (!first) return;
  const int64_t j = mode == 0 ? d / 2 : d;
  int64_t i0, i1;
  aglm_cu_rope_pair(j, n_rot, mode, &i0, &i1);
  float pair[2] = {xh[i0], xh[i1]};
  aglm_cu_rope_rotate(pair, 0, 1, cos_sin + t * n_rot + 2 * j);
  yh[i0] = pair[0];
  yh[i1] = pair[1];
}

// ---- the KV cache: a batch's k (or v) rows into their cells, as f32 or f16 ---------------------------------------

extern "C" __global__ void aglm_kv_store(const float *src, void *cache, const int32_t *cells, int64_t width, int64_t n, int kv_type) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n * width) return;
  const int64_t t = e / width, i = e % width, dst = (int64_t)cells[t] * width + i;
  if (kv_type == AGLM_TYPE_F16) ((uint16_t *)cache)[dst] = aglm_cu_f2h(src[e]);
  else ((float *)cache)[dst] = src[e];
}

// ---- attention over the KV cells: split-K partials (one warp per token, head, split), then the combine -------------
// Token t sees the cells list[first[t] .. first[t] + n_kv[t]) of its sequence (list = kv_cells + kv_start[t]); lane L
// owns head dimensions L, L+32, ... (head_dim <= 256). part: [n_tokens][n_head][splits][hd], ml: [..][splits][2].

#define AGLM_ATTN_MAX_HD 256
extern "C" __global__ void __launch_bounds__(32)
    aglm_attn_split(const float *q, int64_t q_stride, const void *kc, const void *vc, int64_t kv_stride, int kv_type,
                    const int32_t *kv_cells, const int32_t *kv_start, const int32_t *first, const int32_t *n_kv,
                    int n_head, int n_head_kv, int hd, float scale, int splits, float *part, float *ml) {
  const int t = blockIdx.x, h = blockIdx.y, s = blockIdx.z, lane = threadIdx.x;
  const int n = n_kv[t], per = aglm_cu_attn_split_cells(n, splits);
  const int64_t koff = (int64_t)(h / (n_head / n_head_kv)) * hd;
  const int32_t *list = kv_cells + kv_start[t] + first[t];
  float qr[AGLM_ATTN_MAX_HD / 32], acc[AGLM_ATTN_MAX_HD / 32];
  for (int i = 0; i < AGLM_ATTN_MAX_HD / 32; i++) {
    const int d = lane + 32 * i;
    qr[i] = d < hd ? q[(int64_t)t * q_stride + (int64_t)h * hd + d] : 0.0f;
    acc[i] = 0.0f;
  }
  aglm_cu_softmax_state st = aglm_cu_softmax_init();
  const int j1 = min(n, (s + 1) * per);
  for (int j = s * per; j < j1; j++) {
    const int64_t base = (int64_t)list[j] * kv_stride + koff;
    float dot = 0.0f;
    for (int i = 0; i < AGLM_ATTN_MAX_HD / 32 && lane + 32 * i < hd; i++) dot += qr[i] * aglm_cu_kv_at(kc, kv_type, base + lane + 32 * i);
    float p;
    const float factor = aglm_cu_softmax_step(&st, warp_sum(dot) * scale, &p);
    for (int i = 0; i < AGLM_ATTN_MAX_HD / 32 && lane + 32 * i < hd; i++)
      acc[i] = acc[i] * factor + p * aglm_cu_kv_at(vc, kv_type, base + lane + 32 * i);
  }
  const int64_t slot = ((int64_t)t * n_head + h) * splits + s;
  for (int i = 0; i < AGLM_ATTN_MAX_HD / 32 && lane + 32 * i < hd; i++) part[slot * hd + lane + 32 * i] = acc[i];
  if (lane == 0) ml[2 * slot] = st.m, ml[2 * slot + 1] = st.l;
}

extern "C" __global__ void aglm_attn_combine(const float *part, const float *ml, float *out, int64_t out_stride, int n_head, int hd,
                                             int splits) {
  const int t = blockIdx.x, h = blockIdx.y;
  const int64_t slot0 = ((int64_t)t * n_head + h) * splits;
  float m[16], l[16]; // splits <= 16 (the backend's cap)
  for (int s = 0; s < splits; s++) m[s] = ml[2 * (slot0 + s)], l[s] = ml[2 * (slot0 + s) + 1];
  const float mx = aglm_cu_combine_max(m, splits), inv = aglm_cu_combine_inv_sum(m, l, splits, mx);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float v = 0.0f;
    for (int s = 0; s < splits; s++) v += aglm_cu_combine_weight(m[s], l[s], mx, inv) * part[(slot0 + s) * hd + d];
    out[(int64_t)t * out_stride + (int64_t)h * hd + d] = v;
  }
}

// ---- row movement: output_rows (dst[r] = src[rows[r]]) and merge_rows (k consecutive rows interleaved) ------------

extern "C" __global__ void aglm_gather_rows(const float *src, float *dst, const int32_t *rows, int64_t width, int64_t n) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n * width) return;
  dst[e] = src[(int64_t)rows[e / width] * width + e % width];
}

extern "C" __global__ void aglm_merge_rows(const float *src, float *dst, const int32_t *rows, int64_t width, int64_t k, int64_t n) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= n * width * k) return;
  const int64_t r = e / (width * k), rem = e % (width * k), c = rem / k, j = rem % k;
  dst[e] = src[((int64_t)rows[r] + j) * width + c];
}

// ---- embed_interp: one thread per (token, channel); grid_pos holds the n x coordinates, then the n y coordinates -----
extern "C" __global__ void aglm_embed_interp(const float *grid, const float *grid_pos, float *out, int64_t n, int64_t width, int64_t cols,
                                             int64_t rows) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * width) return;
  const int64_t t = i / width, c = i % width;
  const float sx = grid_pos ? grid_pos[t] : 0.0f, sy = grid_pos ? grid_pos[n + t] : 0.0f;
  out[i] = aglm_cu_interp_value(grid, width, cols, rows, sx, sy, c);
}
