// The bert architecture (BERT, BGE, MiniLM, ... encoders) as llama.cpp's converter writes it: token + token-type (row
// 0, "sentence A") + learned absolute position embeddings, a LayerNorm with bias, then per block: q/k/v with biases
// (or a fused attn_qkv), non-causal attention, attn_output + bias, residual, attn_output_norm (LayerNorm), ffn_up +
// bias, GELU (ggml's tanh form), ffn_down + bias, residual, layer_output_norm. No output norm and no output
// projection: the graph's output is the hidden states (model.embed() pools them; `bert.pooling_type` says how).
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { GraphBuilder, type V } from '../graph/ir.js';
import type { ArchBuild, Architecture } from './types.js';

/** llama.cpp's `<arch>.pooling_type` values (enum llama_pooling_type). */
export const POOLING_TYPES: Record<number, string> = { 0: 'none', 1: 'mean', 2: 'cls', 3: 'last', 4: 'rank' };

function positiveInt(key: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AglmError('GGUF_MISSING_KEY', `Metadata key '${key}' must be a positive integer but is ${value}`);
  }
  return value;
}

export interface BertHyperParams {
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  vocabSize: number;
  feedForwardLength: number;
  headCount: number;
  headDim: number;
  layerNormEps: number;
  tokenTypes: number;
  /** `bert.attention.causal` (false for BERT). */
  causal: boolean;
  /** `bert.pooling_type` by name ('none' when the file does not say). */
  poolingType: string;
  /** The graph's output is the hidden states: there are no logits. */
  hasLogits: boolean;
  [key: string]: number | string | boolean;
}

export function readBertHyperParams(file: GgufFile): BertHyperParams {
  const md = file.metadata;
  const req = (k: string) => positiveInt(`bert.${k}`, md.getNumber(`bert.${k}`));
  const embeddingLength = req('embedding_length');
  const headCount = req('attention.head_count');
  const headCountKv = md.optNumber('bert.attention.head_count_kv') ?? headCount;
  if (headCountKv !== headCount) {
    throw new AglmError('UNSUPPORTED_ARCH', `bert with grouped key/value heads (${headCount} heads, ${headCountKv} KV heads) is not supported`);
  }
  const headDim = embeddingLength / headCount;
  if (!Number.isInteger(headDim)) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `bert.embedding_length (${embeddingLength}) is not a multiple of head_count (${headCount})`);
  }
  const embd = file.tensor('token_embd.weight');
  if (!embd) throw new AglmError('GGUF_MISSING_TENSOR', `The model file has no tensor 'token_embd.weight'`);
  const pooling = md.optNumber('bert.pooling_type') ?? 0;
  return {
    contextLength: req('context_length'),
    embeddingLength,
    blockCount: req('block_count'),
    vocabSize: positiveInt('bert.vocab_size', md.optNumber('bert.vocab_size') ?? embd.dims[1] ?? 0),
    feedForwardLength: req('feed_forward_length'),
    headCount,
    headDim,
    layerNormEps: md.getNumber('bert.attention.layer_norm_epsilon'),
    tokenTypes: file.tensor('token_types.weight')?.dims[1] ?? 0,
    causal: md.optBoolean('bert.attention.causal') ?? false,
    poolingType: POOLING_TYPES[pooling] ?? `unknown (${pooling})`,
    hasLogits: false,
  };
}

export function buildBertGraph(file: GgufFile, hp: BertHyperParams): { g: GraphBuilder; hidden: V } {
  const g = new GraphBuilder(file);
  const d = hp.embeddingLength;
  const ff = hp.feedForwardLength;
  const eps = hp.layerNormEps;
  const vec = (name: string, n = d) => g.weight(name, [n]);
  let x = g.embed(g.weight('token_embd.weight', [d, hp.vocabSize]));
  if (hp.tokenTypes > 0) x = g.addVector(x, g.weightRows('token_types.weight', [d, hp.tokenTypes], 0, 1));
  x = g.add(x, g.embedPositions(g.weight('position_embd.weight', [d, hp.contextLength])));
  x = g.layerNorm(x, vec('token_embd_norm.weight'), vec('token_embd_norm.bias'), eps);
  for (let l = 0; l < hp.blockCount; l++) {
    const p = `blk.${l}.`;
    let q: V, k: V, v: V;
    if (g.hasTensor(`${p}attn_qkv.weight`)) {
      const rows = (start: number) => g.weightRows(`${p}attn_qkv.weight`, [d, 3 * d], start, d);
      const bias = (start: number) =>
        g.hasTensor(`${p}attn_qkv.bias`) ? g.weightRows(`${p}attn_qkv.bias`, [3 * d], start, d) : undefined;
      q = g.matmul(x, rows(0), bias(0));
      k = g.matmul(x, rows(d), bias(d));
      v = g.matmul(x, rows(2 * d), bias(2 * d));
    } else {
      q = g.matmul(x, g.weight(`${p}attn_q.weight`, [d, d]), vec(`${p}attn_q.bias`));
      k = g.matmul(x, g.weight(`${p}attn_k.weight`, [d, d]), vec(`${p}attn_k.bias`));
      v = g.matmul(x, g.weight(`${p}attn_v.weight`, [d, d]), vec(`${p}attn_v.bias`));
    }
    const att = g.attention(q, k, v, { nHead: hp.headCount, nHeadKv: hp.headCount, headDim: hp.headDim, scale: 1 / Math.sqrt(hp.headDim), causal: hp.causal });
    const o = g.matmul(att, g.weight(`${p}attn_output.weight`, [d, d]), g.optionalWeight(`${p}attn_output.bias`, [d]));
    const h = g.layerNorm(g.add(o, x), vec(`${p}attn_output_norm.weight`), vec(`${p}attn_output_norm.bias`), eps);
    const up = g.matmul(h, g.weight(`${p}ffn_up.weight`, [d, ff]), vec(`${p}ffn_up.bias`, ff));
    const down = g.matmul(g.gelu(up), g.weight(`${p}ffn_down.weight`, [ff, d]), vec(`${p}ffn_down.bias`));
    x = g.layerNorm(g.add(down, h), vec(`${p}layer_output_norm.weight`), vec(`${p}layer_output_norm.bias`), eps);
  }
  return { g, hidden: g.outputRows(x) };
}

export const bert: Architecture = {
  names: ['bert'],
  build(file: GgufFile): ArchBuild {
    const hparams = readBertHyperParams(file);
    const { g, hidden } = buildBertGraph(file, hparams);
    // No logits: the output value is the hidden states too (Model refuses logits for it; see hasLogits).
    return { hparams, graph: g.build(hidden, hidden) };
  },
};
