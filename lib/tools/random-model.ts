// Writes llama-architecture GGUF files with random weights of any shape and type, for tests and benchmarks (the
// speed and numerics of a real shape do not depend on the weights being trained). A synthetic SentencePiece vocab
// (control tokens, 256 byte tokens, then made-up pieces) makes the file loadable by any GGUF runtime.
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

/** TinyLlama-1.1B's shape. */
export const TINYLLAMA_SHAPE: LlamaShape = {
  embeddingLength: 2048, blockCount: 22, headCount: 32, headCountKv: 4, feedForwardLength: 5632, vocabSize: 32000, contextLength: 2048,
};

/** A deterministic xorshift32 generator of uniform floats in [-1, 1). */
function uniform(seed: number): () => number {
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
  const type = options.type ?? GgmlType.F32;
  const rand = uniform(options.seed ?? 1);
  const s = shape;
  const headDim = s.embeddingLength / s.headCount;
  const u32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.UINT32, value });
  const f32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.FLOAT32, value });
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
    { key: 'general.name', type: GgufValueType.STRING, value: 'random-llama' },
    u32('llama.context_length', s.contextLength),
    u32('llama.embedding_length', s.embeddingLength),
    u32('llama.feed_forward_length', s.feedForwardLength),
    u32('llama.block_count', s.blockCount),
    u32('llama.attention.head_count', s.headCount),
    u32('llama.attention.head_count_kv', s.headCountKv),
    u32('llama.rope.dimension_count', headDim),
    f32('llama.rope.freq_base', s.ropeFreqBase ?? 10000),
    f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    u32('general.file_type', type === GgmlType.F32 ? 0 : type === GgmlType.F16 ? 1 : type === GgmlType.Q4_0 ? 2 : type === GgmlType.Q8_0 ? 7 : 32),
    ...vocabEntries(s.vocabSize),
  ];

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
  const vector = (name: string, n: number) => ({
    name,
    type: GgmlType.F32,
    dims: [n],
    data: () => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = 1 + 0.1 * rand();
      return new Uint8Array(v.buffer);
    },
  });
  const d = s.embeddingLength;
  const kv = s.headCountKv * headDim;
  const tensors = [matrix('token_embd.weight', d, s.vocabSize), vector('output_norm.weight', d)];
  if (!s.tiedOutput) tensors.push(matrix('output.weight', d, s.vocabSize));
  for (let l = 0; l < s.blockCount; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      vector(`${p}attn_norm.weight`, d),
      matrix(`${p}attn_q.weight`, d, d),
      matrix(`${p}attn_k.weight`, d, kv),
      matrix(`${p}attn_v.weight`, d, kv),
      matrix(`${p}attn_output.weight`, d, d),
      vector(`${p}ffn_norm.weight`, d),
      matrix(`${p}ffn_gate.weight`, d, s.feedForwardLength),
      matrix(`${p}ffn_up.weight`, d, s.feedForwardLength),
      matrix(`${p}ffn_down.weight`, s.feedForwardLength, d),
    );
  }
  await writeGguf(path, { version: 3, metadata, tensors });
}
