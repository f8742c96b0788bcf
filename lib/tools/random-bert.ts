// Writes bert-architecture GGUF files with random F32 weights in llama.cpp's layout (its converter's tensor and key
// names), with the tokenizer of a real vocabulary copied in (every `tokenizer.*` entry of a GGUF file, e.g. llama.cpp's
// ggml-vocab-bert-bge.gguf), so tokenization is real WordPiece. For tests of the bert graph against a reference and
// against llama.cpp.
import { GgmlType, GgufValueType, writeGguf, type GgufEntry, type GgufMetadata, type GgufWriteTensor } from '../gguf/index.js';
import { uniform } from './random-model.js';

export interface BertShape {
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  feedForwardLength: number;
  /** Rows of position_embd (`bert.context_length`). */
  contextLength: number;
  /** Rows of token_types. Default 2; 0 writes no token_types tensor. */
  tokenTypes?: number;
}

export interface RandomBertOptions {
  /** The metadata whose `tokenizer.*` entries are copied (a `bert` WordPiece vocabulary). */
  vocab: GgufMetadata;
  seed?: number;
  /** `bert.pooling_type` (llama.cpp's numbering: 1 mean, 2 cls, 3 last); omitted when undefined. */
  poolingType?: number;
  /** One attn_qkv (+ bias) per block instead of attn_q/k/v. Default false. */
  fusedQkv?: boolean;
  layerNormEps?: number;
}

export async function writeRandomBertModel(path: string, shape: BertShape, options: RandomBertOptions): Promise<void> {
  const tokenizer = options.vocab.entries().filter((e) => e.key.startsWith('tokenizer.'));
  const tokens = options.vocab.getStringArray('tokenizer.ggml.tokens');
  const rand = uniform(options.seed ?? 1);
  const s = shape;
  const d = s.embeddingLength;
  const ff = s.feedForwardLength;
  const types = s.tokenTypes ?? 2;
  const u32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.UINT32, value });
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'bert' },
    { key: 'general.name', type: GgufValueType.STRING, value: 'random-bert' },
    u32('bert.context_length', s.contextLength),
    u32('bert.embedding_length', d),
    u32('bert.feed_forward_length', ff),
    u32('bert.block_count', s.blockCount),
    u32('bert.attention.head_count', s.headCount),
    { key: 'bert.attention.layer_norm_epsilon', type: GgufValueType.FLOAT32, value: options.layerNormEps ?? 1e-12 },
    { key: 'bert.attention.causal', type: GgufValueType.BOOL, value: false },
    ...(options.poolingType !== undefined ? [u32('bert.pooling_type', options.poolingType)] : []),
    u32('general.file_type', 0),
    ...tokenizer.filter((e) => e.key !== 'tokenizer.ggml.token_type_count'),
    u32('tokenizer.ggml.token_type_count', types),
  ];
  const f32 = (name: string, dims: number[], value: () => number): GgufWriteTensor => ({
    name,
    type: GgmlType.F32,
    dims,
    data: () => {
      const v = new Float32Array(dims.reduce((a, b) => a * b, 1));
      for (let i = 0; i < v.length; i++) v[i] = value();
      return new Uint8Array(v.buffer);
    },
  });
  const matrix = (name: string, cols: number, rows: number) => f32(name, [cols, rows], () => (rand() * 1.7) / Math.sqrt(cols));
  const bias = (name: string, n: number) => f32(name, [n], () => 0.1 * rand());
  const norm = (name: string) => [f32(`${name}.weight`, [d], () => 1 + 0.1 * rand()), bias(`${name}.bias`, d)];
  const tensors: GgufWriteTensor[] = [f32('token_embd.weight', [d, tokens.length], () => rand())];
  if (types > 0) tensors.push(f32('token_types.weight', [d, types], () => 0.5 * rand()));
  tensors.push(f32('position_embd.weight', [d, s.contextLength], () => 0.5 * rand()), ...norm('token_embd_norm'));
  for (let l = 0; l < s.blockCount; l++) {
    const p = `blk.${l}.`;
    if (options.fusedQkv) tensors.push(matrix(`${p}attn_qkv.weight`, d, 3 * d), bias(`${p}attn_qkv.bias`, 3 * d));
    else {
      for (const x of ['q', 'k', 'v']) tensors.push(matrix(`${p}attn_${x}.weight`, d, d), bias(`${p}attn_${x}.bias`, d));
    }
    tensors.push(matrix(`${p}attn_output.weight`, d, d), bias(`${p}attn_output.bias`, d), ...norm(`${p}attn_output_norm`));
    tensors.push(matrix(`${p}ffn_up.weight`, d, ff), bias(`${p}ffn_up.bias`, ff));
    tensors.push(matrix(`${p}ffn_down.weight`, ff, d), bias(`${p}ffn_down.bias`, d), ...norm(`${p}layer_output_norm`));
  }
  await writeGguf(path, { metadata, tensors });
}
