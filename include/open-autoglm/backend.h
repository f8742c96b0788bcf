/* open-autoglm HAL v2: the C ABI between the engine's core and a compute backend, built into the addon (the CPU) or
 * loaded at run time from a module `aglm-backend-<name>.so` / `.dll` / `.dylib` next to the addon. Only plain C types
 * cross it: opaque handles, counts, pointers with lengths and status codes (enum aglm_status); no exception may leave
 * a backend function.
 *
 * A module exports one function, `aglm_backend_entry` (aglm_hal_entry_fn): asked for an API version, it returns its
 * table, or null with the reason when it cannot serve that version. The core checks the table's api_version and size,
 * asks score() whether the backend can run on this machine, and only then creates programs on it.
 *
 * The nouns:
 *   device   a piece of hardware the backend computes on (its memory, its kind).
 *   program  a graph (the model IR, validated and analysed by the core) bound to a device, with its weights.
 *   session  per-context state of a program: the KV cell pool's memory, the activation arena, threads or queues.
 *   batch    one step: tokens of any number of sequences, each with its position, its KV cell and the cells it sees.
 *
 * The core does everything that is not memory, ops or kernels: graph validation and analysis, load-time weight
 * conversion, the arena plan, KV-cell bookkeeping (which cells each sequence holds), batch validation and scheduling.
 * A backend receives their results. */
#ifndef OPEN_AUTOGLM_BACKEND_H
#define OPEN_AUTOGLM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "open-autoglm/types.h"

#define AGLM_HAL_API_VERSION 3
#define AGLM_HAL_ENTRY_SYMBOL "aglm_backend_entry"

#if defined(_WIN32)
#define AGLM_HAL_EXPORT __declspec(dllexport)
#else
#define AGLM_HAL_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the IR --------------------------------------------------------------------------------------------------- */

/* Ops. Values are f32 matrices [rows][width]; rows are the batch's tokens or its outputs (AGLM_ROWS_*). */
enum aglm_op_kind {
  AGLM_OP_EMBED,           /* out[t] = row tokens[t] of weight w0 (any type), as f32 */
  AGLM_OP_RMS_NORM,        /* out = rms_norm(in0) * w0;                 f0 = eps */
  AGLM_OP_MATMUL,          /* out = in0 . w0^T (+ w1 bias if given) */
  AGLM_OP_ADD,             /* out = in0 + in1 */
  AGLM_OP_MUL,             /* out = in0 * in1 */
  AGLM_OP_SILU_MUL,        /* out = silu(in0) * in1 */
  AGLM_OP_ROPE,            /* out = rope(in0) at each token's position; i0 heads, i1 head_dim, i2 n_rot, i3 mode (0
                              normal, 2 neox, 8 multi-section "M-RoPE", 24 vision), i4 n_ctx_orig (YaRN), i5..i7 the
                              first three sections (modes 8 and 24); f0 freq_base, f1 freq_scale, f2 ext_factor (YaRN,
                              0 = off), f3 attn_factor (0 taken as 1), f4 beta_fast, f5 beta_slow; w0 (optional)
                              frequency factors [n_rot/2]: frequency i is divided by w0[i] (Llama 3).
                              Mode 8 (neox pairs): pair j < n_rot/2 turns by rope_pos plane s(j) * base^(-2j/n_rot), s(j)
                              = 0 for j < i5, 1 for j < i5 + i6, 2 for j < i5 + i6 + i7, else 3 (Qwen2-VL, GLM-4.1V).
                              Mode 24 (neox pairs over the whole rotated width, i5 + i6 = n_rot/2): pair j turns by plane
                              0 * base^(-2j/(n_rot/2)) for j < i5, by plane 1 * base^(-2(j-i5)/(n_rot/2)) after (2-D
                              positions of image patches). */
  AGLM_OP_ATTENTION,       /* stores in1 (k) and in2 (v) in cache slot i0 at each token's KV cell, then out = attention
                              of in0 (q) over the cells the token sees (its own sequence's); i1 n_head, i2 n_head_kv,
                              i3 head_dim, i4 sliding window (0 = none; else a token at position p sees positions
                              > p - window), i5 non-causal (1: a token sees every position of its sequence, which the
                              batch must bring whole); f0 scale */
  AGLM_OP_OUTPUT_ROWS,     /* out (output rows) = the rows of in0 whose output the batch asks for */
  AGLM_OP_LAYER_NORM,      /* out = (in0 - mean) / sqrt(variance + eps) * w0 (+ w1, optional bias); f0 = eps */
  AGLM_OP_GELU,            /* out = gelu(in0), ggml's tanh form */
  AGLM_OP_EMBED_POSITIONS, /* out[t] = row (position of token t) of weight w0 (learned absolute positions) */
  AGLM_OP_ADD_VECTOR,      /* out[t] = in0[t] + w0 (a vector of `width` elements) */
  AGLM_OP_INPUT,           /* out[t] = the batch's input row for token t (aglm_hal_batch.embd; width embd_width) */
  AGLM_OP_EMBED_INTERP,    /* out[t] = bicubic sample (Keys a = -0.75, taps clamped to the edge, x then y) of the grid
                              w0 [width][i1 rows][i0 columns] (f32) at the token's source coordinates grid_pos
                              (x, y): learned position tables resized to an image's patch grid */
  AGLM_OP_MERGE_ROWS,      /* out (output rows) row r = i0 consecutive token rows from the batch's output row r,
                              interleaved: out[r][c * i0 + j] = in0[out_rows[r] + j][c] (a k x k patch merge) */
  AGLM_OP_GELU_ERF,        /* out = 0.5 x (1 + erf(x / sqrt 2)), the exact GELU */
  AGLM_OP_COUNT
};

enum { AGLM_ROWS_TOKENS = 0, AGLM_ROWS_OUTPUTS = 1 };
#define AGLM_OP_INTS 8
#define AGLM_OP_FLOATS 8

/* How the graph reads a weight (the core's analysis), so a backend knows how to store it. */
enum {
  AGLM_WEIGHT_MATMUL = 1u, /* the weight of a matmul (op.w[0]) */
  AGLM_WEIGHT_ROWS = 2u,   /* rows gathered by embed / embed_positions */
  AGLM_WEIGHT_VECTOR = 4u  /* a vector read whole as f32: norm weights, biases, rope frequency factors, add_vector */
};

/* Op flags from the core's analysis. */
enum {
  AGLM_OPF_FOR_HIDDEN = 1u /* the graph's hidden value depends on this op (a batch of hidden outputs runs only these) */
};

typedef struct {
  const char *name;
  int32_t type;     /* enum aglm_type, after any load-time conversion the core made */
  int32_t n_dims;
  int64_t ne[4];    /* ne[0] is the contiguous dimension */
  const void *data; /* nbytes bytes in the GGUF block layout; valid until the backend releases it or frees the program */
  uint64_t nbytes;
  uint32_t uses;    /* AGLM_WEIGHT_* bits */
} aglm_hal_weight;

typedef struct {
  int32_t rows;  /* AGLM_ROWS_TOKENS or AGLM_ROWS_OUTPUTS */
  int64_t width;
} aglm_hal_value;

typedef struct {
  int32_t kind; /* enum aglm_op_kind */
  int32_t out;  /* the value it writes (each value is written by exactly one op, in order) */
  int32_t in[3];
  int32_t w[2];
  int32_t i[AGLM_OP_INTS];
  float f[AGLM_OP_FLOATS];
  int32_t rope;   /* rope ops: the index of the op's configuration in aglm_hal_graph.ropes; else -1 */
  uint32_t flags; /* AGLM_OPF_* */
} aglm_hal_op;

typedef struct {
  int64_t k_width; /* n_head_kv * head_dim of the layer using the slot */
  int64_t v_width;
} aglm_hal_cache_slot;

/* One distinct rope configuration of the graph (the op parameters minus the head layout). */
typedef struct {
  int32_t n_rot, n_ctx_orig;
  float freq_base, freq_scale;
  float ext_factor, attn_factor, beta_fast, beta_slow; /* YaRN (ext_factor 0: off); attn_factor already 1 when unset */
  int32_t freq_factors;                                /* weight index, or -1 */
  int32_t mode;                                        /* the op's i3: 0, 2, 8 or 24 */
  int32_t sections[3];                                 /* modes 8 and 24: the op's i5..i7 */
} aglm_hal_rope;

typedef struct {
  const aglm_hal_weight *weights;
  int32_t n_weights;
  const aglm_hal_value *values;
  int32_t n_values;
  const aglm_hal_op *ops;
  int32_t n_ops;
  const aglm_hal_cache_slot *cache;
  int32_t n_cache;
  const aglm_hal_rope *ropes;
  int32_t n_ropes;
  int32_t output; /* the logits value (output rows, width n_vocab) */
  int32_t hidden; /* the hidden states after the final norm (output rows), or -1 */
} aglm_hal_graph;

/* ---- devices -------------------------------------------------------------------------------------------------- */

enum aglm_device_kind { AGLM_DEVICE_CPU = 0, AGLM_DEVICE_GPU = 1, AGLM_DEVICE_IGPU = 2, AGLM_DEVICE_ACCEL = 3 };

typedef struct {
  char name[64];
  char description[256];
  int32_t kind;          /* enum aglm_device_kind */
  uint64_t memory_total; /* bytes; 0 = unknown */
  uint64_t memory_free;
} aglm_hal_device_info;

/* ---- programs, sessions, batches ------------------------------------------------------------------------------ */

typedef struct aglm_hal_program aglm_hal_program;
typedef struct aglm_hal_session aglm_hal_session;

typedef struct {
  const aglm_hal_graph *graph; /* validated and analysed; program_create copies what it keeps (not the weight data) */
  int32_t device;
  const char *variant;        /* (optional) backend-specific variant ("ref", "avx2", ...); null or "" = the best */
  const char *variant_source; /* (optional) who asked for the variant, for the description */
  int32_t n_threads;          /* threads for load-time work (repacking); 0 = every core */
  /* (optional) The backend no longer reads weight `w`'s data (it made its own copy): the core may unmap or free it. */
  void (*release)(void *user, int32_t w);
  void *release_user;
} aglm_hal_program_desc;

typedef struct {
  int64_t n_cells;  /* KV cells of the pool (the context size): rows of every cache slot */
  int64_t n_batch;  /* most tokens one batch may carry */
  int32_t n_threads;
  int32_t kv_type;  /* element type of the cache: AGLM_TYPE_F32 or AGLM_TYPE_F16 */
  const uint64_t *value_offsets; /* [n_values]: byte offset of each value in the activation arena, planned by the core
                                    for n_batch token rows (64-byte aligned) */
  uint64_t arena_bytes;
} aglm_hal_session_desc;

/* Output kinds of a batch row. */
enum { AGLM_OUT_LOGITS = 0, AGLM_OUT_HIDDEN = 1 };

/* One step. The core has validated it and assigned every token a KV cell. Token t belongs to a sequence whose cells,
 * in position order, are kv_cells[kv_start[t] ..] (entry j holds position j; the token's own cell is among them); a
 * causal attention op lets it see entries [max(0, pos - window + 1), pos], a non-causal one entries [0, seq_len[t]).
 * Output row i is batch row out_rows[i], written to out[i] (n_vocab floats for AGLM_OUT_LOGITS, the hidden width for
 * AGLM_OUT_HIDDEN). On failure the cells this batch writes are unspecified; no other cell is touched. */
typedef struct {
  int32_t n_tokens;          /* 1..n_batch */
  const uint32_t *tokens;    /* [n_tokens] */
  const int32_t *pos;        /* [n_tokens] position in its sequence */
  const int32_t *cell;       /* [n_tokens] the KV cell its keys and values go to */
  const int32_t *kv_start;   /* [n_tokens] where its sequence's cell list starts in kv_cells */
  const int32_t *seq_len;    /* [n_tokens] its sequence's length after this batch */
  const int32_t *kv_cells;   /* the cell lists */
  int32_t n_out;
  const int32_t *out_rows;   /* [n_out] ascending */
  const int32_t *out_kind;   /* [n_out] AGLM_OUT_LOGITS or AGLM_OUT_HIDDEN */
  float *const *out;         /* [n_out] destinations */
  /* (optional) Polled between ops and inside long ones: non-zero stops the batch with AGLM_ERR_ABORTED. */
  int32_t (*abort)(void *user);
  void *abort_user;
  /* (optional, API 3) Input rows instead of token ids: token t with embd_row[t] >= 0 takes row embd_row[t] of embd
   * (rows of embd_width floats) in an embed op (whose width must be embd_width) and in input ops. */
  const float *embd;
  int32_t embd_width;
  const int32_t *embd_row;   /* [n_tokens], -1: the token id */
  /* (optional, API 3) Rope positions in 4 planes [4][n_tokens] (multi-section rope); null: every plane is pos. */
  const int32_t *rope_pos;
  /* (optional, API 3) Source coordinates for embed_interp in 2 planes [2][n_tokens] (x, then y); null: 0. */
  const float *grid_pos;
} aglm_hal_batch;

/* ---- the backend table ---------------------------------------------------------------------------------------- */

typedef struct aglm_hal_backend {
  uint32_t api_version; /* AGLM_HAL_API_VERSION */
  uint32_t size;        /* sizeof(aglm_hal_backend) as the backend was built */
  const char *name;     /* "cpu", "vulkan", "cuda", ... (the module's file is aglm-backend-<name>) */
  /* How well the backend suits this machine: 0 = cannot run here. `why` receives one sentence. */
  int32_t (*score)(char *why, size_t why_len);
  int32_t (*device_count)(void);
  int32_t (*device_info)(int32_t device, aglm_hal_device_info *out); /* aglm_status */
  /* Non-zero when `device` runs op `op` with weights of `weight_type` (-1: an op without weights, or any type). */
  int32_t (*supports)(int32_t device, int32_t op, int32_t weight_type);

  int32_t (*program_create)(const aglm_hal_program_desc *desc, aglm_hal_program **out, char *err, size_t err_len);
  void (*program_free)(aglm_hal_program *p);
  /* One line: what the program runs on and why (the variant chosen). */
  void (*program_describe)(const aglm_hal_program *p, char *buf, size_t len);
  /* (optional) bytes the program holds of its own (repacked or uploaded weights); defaults to 0. */
  uint64_t (*program_memory)(const aglm_hal_program *p);

  int32_t (*session_create)(aglm_hal_program *p, const aglm_hal_session_desc *desc, aglm_hal_session **out, char *err,
                            size_t err_len);
  void (*session_free)(aglm_hal_session *s);
  /* Runs one batch through the graph (aglm_hal_batch). At most one call per session at a time. */
  int32_t (*session_decode)(aglm_hal_session *s, const aglm_hal_batch *batch, char *err, size_t err_len);
  /* (optional) bytes the session allocated; defaults to 0. */
  uint64_t (*session_memory)(const aglm_hal_session *s);

  /* (optional) A JSON object with backend-specific detail for systemInfo() (the CPU: its features, kernel variants and
   * the one it would choose for `variant`). Writes at most len bytes, NUL-terminated; returns the length it needed. */
  size_t (*report)(const char *variant, char *buf, size_t len);
} aglm_hal_backend;

/* The one symbol a backend module exports: its table for `api_version`, or null (with the reason in `why`). */
typedef const aglm_hal_backend *(*aglm_hal_entry_fn)(uint32_t api_version, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
