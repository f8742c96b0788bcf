// Which type each tensor of a model gets when the model is stored or loaded at a given precision: the one rule shared
// by `quantize` (files) and the precision planner (quantize-on-load).
import { GgmlType, ggmlTypeInfo, ggmlTypeName, type GgufMetadata, type GgufTensorInfo } from '../gguf/index.js';

export const PRECISIONS = ['f32', 'bf16', 'f16', 'q8_0', 'q4_0'] as const;
export type Precision = (typeof PRECISIONS)[number];

export const PRECISION_TYPES: Record<Precision, number> = {
  f32: GgmlType.F32,
  bf16: GgmlType.BF16,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
};

/** Bits per weight of each precision (block scales included), from most to least precise. */
export function precisionBits(p: Precision): number {
  const info = ggmlTypeInfo(PRECISION_TYPES[p])!;
  return (info.typeSize * 8) / info.blockSize;
}

/** The precision a type belongs to, if it is one of ours. */
export function precisionOfType(type: number): Precision | undefined {
  return PRECISIONS.find((p) => PRECISION_TYPES[p] === type);
}

/**
 * The type a tensor gets at precision `want`: vectors (norms, biases) stay F32; the output projection keeps at least
 * 8 bits (llama.cpp does the same: it is the most sensitive matrix); matrices whose rows do not fill whole blocks fall
 * back to F16.
 */
export function tensorTypeFor(t: Pick<GgufTensorInfo, 'dims'>, want: number, isOutput: boolean): { type: number; reason?: string } {
  if (t.dims.filter((d) => d > 1).length < 2) return { type: GgmlType.F32, reason: 'vectors stay F32' };
  let type = want;
  let reason: string | undefined;
  if (isOutput && want === GgmlType.Q4_0) {
    type = GgmlType.Q8_0;
    reason = 'the output projection keeps 8 bits';
  }
  const block = ggmlTypeInfo(type)!.blockSize;
  if (t.dims[0] % block !== 0) return { type: GgmlType.F16, reason: `row length ${t.dims[0]} is not a multiple of ${block}; F16 instead` };
  return { type, reason };
}

/** The type that holds most of a file's weight bytes (its effective precision). */
export function dominantType(tensors: readonly GgufTensorInfo[]): number {
  const bytes = new Map<number, number>();
  for (const t of tensors) if (t.dims.filter((d) => d > 1).length >= 2) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.byteLength);
  let best = GgmlType.F32 as number;
  let most = -1;
  for (const [type, n] of bytes) if (n > most) [best, most] = [type, n];
  return best;
}

export function typeName(type: number): string {
  return ggmlTypeName(type);
}

// ---- llama.cpp's quantization mixes ----------------------------------------------------------------------------

/**
 * The llama.cpp file types `quantize` writes besides the precisions above. `q4_k` and `q5_k` are llama.cpp's Q4_K_S
 * and Q5_K_S; `q4_k_m` and `q5_k_m` its Q4_K_M and Q5_K_M. Each follows llama.cpp's per-tensor rules
 * (llamaMixTensorType).
 */
export const LLAMA_MIXES = ['q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k', 'q4_k_m', 'q5_k_m'] as const;
export type LlamaMix = (typeof LLAMA_MIXES)[number];

/** Per mix: llama.cpp's name, its `general.file_type` (enum llama_ftype) and the type most tensors get. */
export const LLAMA_MIX_INFO: Record<LlamaMix, { llamaName: string; fileType: number; baseType: number }> = {
  q4_1: { llamaName: 'Q4_1', fileType: 3, baseType: GgmlType.Q4_1 },
  q5_0: { llamaName: 'Q5_0', fileType: 8, baseType: GgmlType.Q5_0 },
  q5_1: { llamaName: 'Q5_1', fileType: 9, baseType: GgmlType.Q5_1 },
  q4_k: { llamaName: 'Q4_K_S', fileType: 14, baseType: GgmlType.Q4_K },
  q5_k: { llamaName: 'Q5_K_S', fileType: 16, baseType: GgmlType.Q5_K },
  q6_k: { llamaName: 'Q6_K', fileType: 18, baseType: GgmlType.Q6_K },
  q4_k_m: { llamaName: 'Q4_K_M', fileType: 15, baseType: GgmlType.Q4_K },
  q5_k_m: { llamaName: 'Q5_K_M', fileType: 17, baseType: GgmlType.Q5_K },
};

/** What llama.cpp's rules need to know about the model besides the tensor itself. */
export interface MixModelInfo {
  arch: string;
  /** `<arch>.block_count`. */
  layers: number;
  /** The file has `output.weight` (otherwise the token embedding doubles as the output). */
  hasOutput: boolean;
  /** `<arch>.expert_count` (0 without experts). */
  experts: number;
  /** llama.cpp's LLM_TYPE_70B for llama: 80 layers with grouped-query attention. */
  is70B: boolean;
  /** Per attn_v tensor, its rank among them in llama.cpp's visiting order (by layer, then name). */
  attnVIndex: Map<string, number>;
  /** attn_v, attn_qkv and attn_kv_b tensors: llama.cpp's n_attention_wv. */
  attnVCount: number;
}

const layerOf = (name: string): number => {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
};
const isAttnV = (name: string) => name.includes('attn_v.weight') || name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight');

export function mixModelInfo(metadata: GgufMetadata, tensors: readonly Pick<GgufTensorInfo, 'name'>[]): MixModelInfo {
  const arch = metadata.optString('general.architecture') ?? '';
  const num = (key: string) => metadata.optNumber(`${arch}.${key}`);
  const layers = num('block_count') ?? 0;
  const heads = num('attention.head_count') ?? 0;
  const headsKv = num('attention.head_count_kv') ?? heads;
  // llama.cpp visits tensors sorted by layer number, then by name; its attn_v counter follows that order.
  const attnV = tensors
    .map((t) => t.name)
    .filter((n) => n.includes('attn_v.weight'))
    .sort((a, b) => layerOf(a) - layerOf(b) || (a < b ? -1 : a > b ? 1 : 0));
  return {
    arch,
    layers,
    hasOutput: tensors.some((t) => t.name === 'output.weight'),
    experts: num('expert_count') ?? 0,
    is70B: arch === 'llama' && layers === 80 && heads !== headsKv,
    attnVIndex: new Map(attnV.map((n, i) => [n, i])),
    attnVCount: tensors.filter((t) => isAttnV(t.name)).length,
  };
}

/** Whether a tensor is quantized at all (llama.cpp's llama_model_quantize_impl): 2D+ `weight` tensors except norms and a few small ones. */
export function isQuantizedTensor(t: Pick<GgufTensorInfo, 'name' | 'dims'>): boolean {
  const n = t.name;
  return (
    n.endsWith('weight') &&
    t.dims.filter((d) => d > 1).length >= 2 &&
    !n.includes('_norm.weight') &&
    !n.includes('ffn_gate_inp.weight') &&
    n !== 'position_embd.weight' &&
    n !== 'token_types.weight'
  );
}

/**
 * The type llama.cpp gives a tensor in a mix: our rendering of llama.cpp's llama_tensor_get_type (src/llama-quant.cpp)
 * for the file types of LLAMA_MIXES, without an importance matrix:
 * - the output projection (or the token embedding when there is none) gets Q6_K, or Q8_0 when its rows are not a
 *   multiple of the base type's block;
 * - attn_v: Q4_K_M and Q5_K_M give Q6_K to the layers use_more_bits selects (the first and last eighth, and every third
 *   in between: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2, i counting attn_v tensors); Q4_K_S gives Q5_K to the first
 *   4; a 70B llama's Q4_K attn_v becomes Q5_K; 8 experts: Q8_0;
 * - attn_k: Q8_0 with 8 experts; attn_output: Q5_K for Q4_K_S/M with 8 experts; attn_qkv: Q5_K (Q4_K_M), Q6_K (Q5_K_M);
 * - ffn_down (i = layer): Q4_K_M and Q5_K_M give Q6_K where use_more_bits(i, layers); Q4_K_S gives Q5_K to the first
 *   eighth (Falcon has its own Q4_K_M steps: Q6_K for the first 16th, Q5_K where use_more_bits);
 * - a row length the chosen type's block does not divide falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; if that
 *   block does not divide it either, F16 (llama.cpp stops with an error for the 32-blocks; we write F16 instead).
 * Vectors and other unquantized tensors stay F32, as everywhere in `quantize`.
 */
export function llamaMixTensorType(t: Pick<GgufTensorInfo, 'name' | 'dims'>, mix: LlamaMix, info: MixModelInfo): { type: number; reason?: string } {
  if (!isQuantizedTensor(t)) return { type: GgmlType.F32, reason: 'vectors and norms stay F32' };
  const ftype = LLAMA_MIX_INFO[mix].llamaName;
  const name = t.name;
  const nx = t.dims[0];
  const blockOf = (type: number) => ggmlTypeInfo(type)!.blockSize;
  const useMoreBits = (i: number, n: number) => i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;
  const isM = ftype === 'Q4_K_M' || ftype === 'Q5_K_M';
  const falcon = info.arch === 'falcon';
  let type = LLAMA_MIX_INFO[mix].baseType;
  let reason: string | undefined;
  if (name === 'output.weight' || (!info.hasOutput && name === 'token_embd.weight')) {
    if (falcon || nx % blockOf(type) !== 0) [type, reason] = [GgmlType.Q8_0, 'the output projection: Q8_0 (its rows do not fill the base blocks)'];
    else [type, reason] = [GgmlType.Q6_K, 'the output projection gets Q6_K'];
  } else if (name === 'token_embd.weight') {
    // llama.cpp changes the token embedding only for the IQ mixes.
  } else if (name.includes('attn_v.weight')) {
    const i = info.attnVIndex.get(name) ?? 0;
    const n = info.attnVCount;
    if (isM && useMoreBits(i, n)) [type, reason] = [GgmlType.Q6_K, `attn_v ${i} of ${n}: use_more_bits (${ftype})`];
    else if (ftype === 'Q4_K_S' && i < 4) [type, reason] = [GgmlType.Q5_K, `attn_v ${i} < 4 (Q4_K_S)`];
    if (info.is70B && (type === GgmlType.Q3_K || type === GgmlType.Q4_K)) [type, reason] = [GgmlType.Q5_K, 'attn_v of a 70B model'];
    if (info.experts === 8) [type, reason] = [GgmlType.Q8_0, 'attn_v with 8 experts'];
  } else if (name.includes('attn_k.weight')) {
    if (info.experts === 8) [type, reason] = [GgmlType.Q8_0, 'attn_k with 8 experts'];
  } else if (name.includes('ffn_down')) {
    const i = layerOf(name); // llama.cpp's ffn_down counter: the layer (it parses the name when there are experts)
    const n = info.layers;
    if (ftype === 'Q4_K_M') {
      if (falcon) {
        if (i < Math.floor(n / 16)) [type, reason] = [GgmlType.Q6_K, `ffn_down ${i} < ${n}/16 (Falcon Q4_K_M)`];
        else if (useMoreBits(i, n)) [type, reason] = [GgmlType.Q5_K, `ffn_down ${i}: use_more_bits (Falcon Q4_K_M)`];
      } else if (useMoreBits(i, n)) [type, reason] = [GgmlType.Q6_K, `ffn_down ${i} of ${n}: use_more_bits (Q4_K_M)`];
    } else if (ftype === 'Q5_K_M' && useMoreBits(i, n)) [type, reason] = [GgmlType.Q6_K, `ffn_down ${i} of ${n}: use_more_bits (Q5_K_M)`];
    else if (ftype === 'Q4_K_S' && !falcon && i < Math.floor(n / 8)) [type, reason] = [GgmlType.Q5_K, `ffn_down ${i} < ${n}/8 (Q4_K_S)`];
  } else if (name.includes('attn_output.weight')) {
    if (!falcon && info.experts === 8 && (ftype === 'Q4_K_S' || ftype === 'Q4_K_M')) [type, reason] = [GgmlType.Q5_K, 'attn_output with 8 experts'];
  } else if (name.includes('attn_qkv.weight')) {
    if (ftype === 'Q4_K_M') [type, reason] = [GgmlType.Q5_K, 'attn_qkv (Q4_K_M)'];
    else if (ftype === 'Q5_K_M') [type, reason] = [GgmlType.Q6_K, 'attn_qkv (Q5_K_M)'];
  }
  if (nx % blockOf(type) !== 0) {
    const fallback = type === GgmlType.Q4_K ? GgmlType.Q5_0 : type === GgmlType.Q5_K ? GgmlType.Q5_1 : type === GgmlType.Q6_K ? GgmlType.Q8_0 : GgmlType.F16;
    const to = nx % blockOf(fallback) === 0 ? fallback : GgmlType.F16;
    return { type: to, reason: `row length ${nx} is not a multiple of ${blockOf(type)}: ${ggmlTypeName(type)} falls back to ${ggmlTypeName(to)}` };
  }
  return { type, reason };
}
