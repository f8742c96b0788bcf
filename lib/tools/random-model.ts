// Writes GGUF files with random weights of any shape and type, for tests and benchmarks (the speed and numerics of a
// real shape do not depend on the weights being trained), in llama.cpp's layout for each architecture: llama (with
// Llama 3 `rope_freqs.weight` or rope scaling keys on request), qwen2 (q/k/v biases), chatglm (fused attn_qkv with
// bias, fused gate/up ffn_up, rotary on half of each head) and glm4 (chatglm's layout with separate q/k/v + biases, as
// its converter writes them, and post-attention / post-FFN norms). A synthetic SentencePiece vocab (control tokens,
// 256 byte tokens, then made-up pieces) makes the file loadable by any GGUF runtime.
import { GgmlType, GgufValueType, ggmlTensorBytes, ggmlTypeInfo, writeGguf } from '../gguf/index.js';
import type { GgufEntry } from '../gguf/index.js';
import { fromNative, nativeBinding } from '../native.js';

export interface LlamaShape {
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  vocabSize: number;
  contextLength: number;
  tiedOutput?: boolean;
  ropeFreqBase?: number;
}

export interface RandomModelOptions {
  /** GGML type of the weight matrices (vectors stay F32). Default F32. */
  type?: number;
  seed?: number;
}

export type RandomArch = 'llama' | 'qwen2' | 'chatglm' | 'glm4';

export interface RandomArchOptions extends RandomModelOptions {
  /** Default 'llama'. */
  arch?: RandomArch;
  /** Q/K/V as one attn_qkv tensor (default for chatglm) or three (the default elsewhere; glm4's converter writes three). */
  qkv?: 'fused' | 'separate';
  /** Rotated dimensions per head. Default: half the head for chatglm/glm4, the whole head otherwise. */
  ropeDims?: number;
  /** llama: write Llama 3 style `rope_freqs.weight` frequency factors (llama3 rule, original context 16). */
  ropeFreqs?: boolean;
  /** `<arch>.rope.scaling.*` keys. */
  ropeScaling?: { type: 'linear' | 'yarn'; factor: number; originalContextLength?: number };
  /** Extra metadata entries (appended). */
  metadata?: GgufEntry[];
  /**
   * A real vocabulary instead of the synthetic one: `tokenizer.*` entries (e.g. from a vocabulary GGUF), optionally
   * with control tokens appended (their ids follow the vocabulary's). The shape's vocabSize is ignored.
   */
  vocab?: { entries: GgufEntry[]; addControlTokens?: string[] };
}

/** A vocabulary's `tokenizer.*` entries with control tokens appended (tokens, scores, token types extended). */
export function vocabWith(entries: GgufEntry[], add: string[] = []): { entries: GgufEntry[]; size: number } {
  const out = entries.filter((e) => e.key.startsWith('tokenizer.')).map((e) => ({ ...e }));
  const find = (key: string) => out.find((e) => e.key === key);
  const tokens = find('tokenizer.ggml.tokens');
  if (!tokens || tokens.type !== GgufValueType.ARRAY) throw new RangeError('the vocabulary has no tokenizer.ggml.tokens');
  const items = [...((tokens.value as { items: string[] }).items)];
  items.push(...add);
  tokens.value = { itemType: GgufValueType.STRING, items };
  const types = find('tokenizer.ggml.token_type');
  if (types) {
    const old = Array.from((types.value as { items: ArrayLike<number> }).items);
    types.value = { itemType: GgufValueType.INT32, items: Int32Array.from([...old, ...add.map(() => 3)]) };
  }
  const scores = find('tokenizer.ggml.scores');
  if (scores) {
    const old = Array.from((scores.value as { items: ArrayLike<number> }).items);
    scores.value = { itemType: GgufValueType.FLOAT32, items: Float32Array.from([...old, ...add.map(() => 0)]) };
  }
  return { entries: out.filter((e) => e.key !== 'tokenizer.chat_template'), size: items.length };
}

/** TinyLlama-1.1B's shape. */
export const TINYLLAMA_SHAPE: LlamaShape = {
  embeddingLength: 2048, blockCount: 22, headCount: 32, headCountKv: 4, feedForwardLength: 5632, vocabSize: 32000, contextLength: 2048,
};

/** A deterministic xorshift32 generator of uniform floats in [-1, 1). */
export function uniform(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2147483648 - 1;
  };
}

function vocabEntries(n: number): GgufEntry[] {
  if (n < 259) throw new RangeError('a random model needs a vocabulary of at least 259 tokens');
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; tokens.length < n; i++) {
    let s = '';
    for (let v = i; ; v = Math.floor(v / 26) - 1) {
      s = letters[v % 26] + s;
      if (v < 26) break;
    }
    tokens.push(i % 2 ? s : `▁${s}`);
    types.push(1);
  }
  const scores = new Float32Array(n);
  for (let i = 259; i < n; i++) scores[i] = -i;
  return [
    { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.STRING, items: tokens } },
    { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: scores } },
    { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.INT32, items: Int32Array.from(types) } },
    { key: 'tokenizer.ggml.bos_token_id', type: GgufValueType.UINT32, value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: GgufValueType.UINT32, value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: GgufValueType.UINT32, value: 0 },
  ];
}

export async function writeRandomLlamaModel(path: string, shape: LlamaShape, options: RandomModelOptions = {}): Promise<void> {
  await writeRandomModel(path, shape, { ...options, arch: 'llama' });
}

/** Llama 3's frequency factors (its `rope_scaling` rule with factor 8, low/high frequency factors 1 and 4). */
export function llama3FreqFactors(ropeDims: number, freqBase: number, originalContext: number): Float32Array<ArrayBuffer> {
  const factor = 8, low = 1, high = 4;
  const lowWavelen = originalContext / low, highWavelen = originalContext / high;
  const out = new Float32Array(ropeDims / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = 1 / Math.pow(freqBase, (2 * i) / ropeDims);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (originalContext / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

export async function writeRandomModel(path: string, shape: LlamaShape, options: RandomArchOptions = {}): Promise<void> {
  const arch = options.arch ?? 'llama';
  const realVocab = options.vocab ? vocabWith(options.vocab.entries, options.vocab.addControlTokens) : undefined;
  if (realVocab) shape = { ...shape, vocabSize: realVocab.size };
  const glm = arch === 'chatglm' || arch === 'glm4';
  const fusedQkv = (options.qkv ?? (arch === 'chatglm' ? 'fused' : 'separate')) === 'fused';
  const qkvBias = arch !== 'llama';
  const type = options.type ?? GgmlType.F32;
  const rand = uniform(options.seed ?? 1);
  const s = shape;
  const headDim = s.embeddingLength / s.headCount;
  const ropeDims = options.ropeDims ?? (glm ? headDim / 2 : headDim);
  const freqBase = s.ropeFreqBase ?? 10000;
  const u32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.UINT32, value });
  const f32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.FLOAT32, value });
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: arch },
    { key: 'general.name', type: GgufValueType.STRING, value: `random-${arch}` },
    u32(`${arch}.context_length`, s.contextLength),
    u32(`${arch}.embedding_length`, s.embeddingLength),
    u32(`${arch}.feed_forward_length`, s.feedForwardLength),
    u32(`${arch}.block_count`, s.blockCount),
    u32(`${arch}.attention.head_count`, s.headCount),
    u32(`${arch}.attention.head_count_kv`, s.headCountKv),
    u32(`${arch}.rope.dimension_count`, ropeDims),
    f32(`${arch}.rope.freq_base`, freqBase),
    f32(`${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
    u32('general.file_type', type === GgmlType.F32 ? 0 : type === GgmlType.F16 ? 1 : type === GgmlType.Q4_0 ? 2 : type === GgmlType.Q8_0 ? 7 : 32),
    ...(realVocab ? realVocab.entries : vocabEntries(s.vocabSize)),
  ];
  if (options.ropeScaling) {
    const r = options.ropeScaling;
    metadata.push({ key: `${arch}.rope.scaling.type`, type: GgufValueType.STRING, value: r.type }, f32(`${arch}.rope.scaling.factor`, r.factor));
    if (r.originalContextLength !== undefined) metadata.push(u32(`${arch}.rope.scaling.original_context_length`, r.originalContextLength));
  }
  metadata.push(...(options.metadata ?? []));

  const native = nativeBinding();
  const matrix = (name: string, cols: number, rows: number) => {
    const t = cols % (ggmlTypeInfo(type)?.blockSize ?? 1) === 0 ? type : GgmlType.F16;
    return {
      name,
      type: t,
      dims: [cols, rows],
      data: async () => {
        const scale = 1 / Math.sqrt(cols);
        const values = new Float32Array(cols * rows);
        for (let i = 0; i < values.length; i++) values[i] = rand() * scale * 1.7;
        const f = new Uint8Array(values.buffer);
        if (t === GgmlType.F32) return f;
        const out = new Uint8Array(ggmlTensorBytes(t, [cols, rows]));
        try {
          await native.convertRows(GgmlType.F32, f, t, rows, cols, out);
        } catch (e) {
          throw fromNative(e);
        }
        return out;
      },
    };
  };
  const vectorOf = (name: string, v: Float32Array<ArrayBuffer>) => ({ name, type: GgmlType.F32, dims: [v.length], data: () => new Uint8Array(v.buffer) });
  const vector = (name: string, n: number, center = 1, spread = 0.1) => ({
    name,
    type: GgmlType.F32,
    dims: [n],
    data: () => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = center + spread * rand();
      return new Uint8Array(v.buffer);
    },
  });
  const d = s.embeddingLength;
  const kv = s.headCountKv * headDim;
  const ff = s.feedForwardLength;
  const tensors = [matrix('token_embd.weight', d, s.vocabSize), vector('output_norm.weight', d)];
  if (!s.tiedOutput) tensors.push(matrix('output.weight', d, s.vocabSize));
  if (options.ropeFreqs) tensors.push(vectorOf('rope_freqs.weight', llama3FreqFactors(ropeDims, freqBase, 16)));
  for (let l = 0; l < s.blockCount; l++) {
    const p = `blk.${l}.`;
    tensors.push(vector(`${p}attn_norm.weight`, d));
    if (fusedQkv) {
      tensors.push(matrix(`${p}attn_qkv.weight`, d, d + 2 * kv));
      if (qkvBias) tensors.push(vector(`${p}attn_qkv.bias`, d + 2 * kv, 0, 0.5));
    } else {
      tensors.push(matrix(`${p}attn_q.weight`, d, d), matrix(`${p}attn_k.weight`, d, kv), matrix(`${p}attn_v.weight`, d, kv));
      if (qkvBias) tensors.push(vector(`${p}attn_q.bias`, d, 0, 0.5), vector(`${p}attn_k.bias`, kv, 0, 0.5), vector(`${p}attn_v.bias`, kv, 0, 0.5));
    }
    tensors.push(matrix(`${p}attn_output.weight`, d, d));
    if (arch === 'glm4') tensors.push(vector(`${p}post_attention_norm.weight`, d));
    tensors.push(vector(`${p}ffn_norm.weight`, d));
    if (glm) tensors.push(matrix(`${p}ffn_up.weight`, d, 2 * ff));
    else tensors.push(matrix(`${p}ffn_gate.weight`, d, ff), matrix(`${p}ffn_up.weight`, d, ff));
    tensors.push(matrix(`${p}ffn_down.weight`, ff, d));
    if (arch === 'glm4') tensors.push(vector(`${p}post_ffw_norm.weight`, d));
  }
  await writeGguf(path, { version: 3, metadata, tensors });
}

/** A GLM-4.1V-style vision tower + projector (clip.projector_type glm4v); real: 1536 wide, 24 blocks, 12 heads. */
export interface Glm4vProjectorShape {
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  feedForwardLength: number;
  /** The text model's embedding length (the merger's width and the output rows'). */
  textWidth: number;
  /** The projector FFN's inner width (context_dim: 13696 for GLM-4.1V). */
  mergerFeedForward: number;
  /** Patch side (14) and the position grid's side in patches (24: image_size 336). */
  patchSize?: number;
  gridSide?: number;
}

/**
 * Writes a random-weight glm4v projector file in llama.cpp's layout (names, shapes, metadata as its converter writes
 * them): the two temporal halves of the patch convolution, the learned position grid, blocks with fused QKV and RMS
 * norms, post norm, the 2 x 2 patch merger, mm.model.fc, mm.post_norm (LayerNorm) and the SwiGLU projector. `type`
 * is the matrices' type (the convolutions and the merger are F32 or F16; the position grid F32).
 */
export async function writeRandomGlm4vProjector(path: string, s: Glm4vProjectorShape, options: RandomModelOptions & { convType?: number; bias?: boolean } = {}): Promise<void> {
  const type = options.type ?? GgmlType.F32;
  const convType = options.convType ?? GgmlType.F32;
  const rand = uniform(options.seed ?? 7);
  const p = s.patchSize ?? 14;
  const grid = s.gridSide ?? 24;
  const d = s.embeddingLength;
  const native = nativeBinding();
  const u32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.UINT32, value });
  const f32s = (key: string, v: number[]): GgufEntry => ({ key, type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: Float32Array.from(v) } });
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'clip' },
    { key: 'general.name', type: GgufValueType.STRING, value: 'random-glm4v-mmproj' },
    { key: 'clip.projector_type', type: GgufValueType.STRING, value: 'glm4v' },
    { key: 'clip.has_vision_encoder', type: GgufValueType.BOOL, value: true },
    { key: 'clip.use_silu', type: GgufValueType.BOOL, value: true },
    u32('clip.vision.image_size', p * grid),
    u32('clip.vision.patch_size', p),
    u32('clip.vision.embedding_length', d),
    u32('clip.vision.feed_forward_length', s.feedForwardLength),
    u32('clip.vision.block_count', s.blockCount),
    u32('clip.vision.attention.head_count', s.headCount),
    { key: 'clip.vision.attention.layer_norm_epsilon', type: GgufValueType.FLOAT32, value: 1e-5 },
    u32('clip.vision.projection_dim', s.textWidth),
    u32('clip.vision.spatial_merge_size', 2),
    f32s('clip.vision.image_mean', [0.48145466, 0.4578275, 0.40821073]),
    f32s('clip.vision.image_std', [0.26862954, 0.26130258, 0.27577711]),
  ];
  const tensorOf = (name: string, dims: number[], t: number, scale: number, center = 0) => ({
    name,
    type: t,
    dims,
    data: async () => {
      const n = dims.reduce((a, b) => a * b, 1);
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = center + rand() * scale;
      const f = new Uint8Array(values.buffer);
      if (t === GgmlType.F32) return f;
      const out = new Uint8Array(ggmlTensorBytes(t, dims));
      try {
        await native.convertRows(GgmlType.F32, f, t, n / dims[0], dims[0], out);
      } catch (e) {
        throw fromNative(e);
      }
      return out;
    },
  });
  const matrix = (name: string, cols: number, rows: number) => {
    const t = cols % (ggmlTypeInfo(type)?.blockSize ?? 1) === 0 ? type : GgmlType.F16;
    return tensorOf(name, [cols, rows], t, 1.7 / Math.sqrt(cols));
  };
  const vector = (name: string, n: number, center = 1, spread = 0.1) => tensorOf(name, [n], GgmlType.F32, spread, center);
  const bias = options.bias !== false;
  const tensors = [
    tensorOf('v.patch_embd.weight', [p, p, 3, d], convType, 1.7 / Math.sqrt(3 * p * p)),
    tensorOf('v.patch_embd.weight.1', [p, p, 3, d], convType, 1.7 / Math.sqrt(3 * p * p)),
    vector('v.patch_embd.bias', d, 0, 0.5),
    vector('v.norm_embd.weight', d),
    tensorOf('v.position_embd.weight', [d, grid * grid], GgmlType.F32, 0.5),
  ];
  for (let l = 0; l < s.blockCount; l++) {
    const b = `v.blk.${l}.`;
    tensors.push(vector(`${b}ln1.weight`, d), matrix(`${b}attn_qkv.weight`, d, 3 * d));
    if (bias) tensors.push(vector(`${b}attn_qkv.bias`, 3 * d, 0, 0.5));
    tensors.push(matrix(`${b}attn_out.weight`, d, d));
    if (bias) tensors.push(vector(`${b}attn_out.bias`, d, 0, 0.2));
    tensors.push(vector(`${b}ln2.weight`, d), matrix(`${b}ffn_gate.weight`, d, s.feedForwardLength), matrix(`${b}ffn_up.weight`, d, s.feedForwardLength));
    tensors.push(matrix(`${b}ffn_down.weight`, s.feedForwardLength, d));
  }
  const o = s.textWidth;
  tensors.push(
    vector('v.post_ln.weight', d),
    tensorOf('mm.patch_merger.weight', [2, 2, d, o], convType, 1.7 / Math.sqrt(4 * d)),
    vector('mm.patch_merger.bias', o, 0, 0.5),
    matrix('mm.model.fc.weight', o, o),
    vector('mm.post_norm.weight', o),
    vector('mm.post_norm.bias', o, 0, 0.2),
    matrix('mm.gate.weight', o, s.mergerFeedForward),
    matrix('mm.up.weight', o, s.mergerFeedForward),
    matrix('mm.down.weight', s.mergerFeedForward, o),
  );
  await writeGguf(path, { version: 3, metadata, tensors });
}
