// The llama architecture (Llama 1/2, TinyLlama, Mistral-style GQA): hyper-parameters from `llama.*` metadata and
// the forward graph: RMS norm, grouped-query attention with rotary embeddings, SwiGLU feed-forward, tied or
// separate output weights.
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { GraphBuilder, ROPE_NORMAL, type V } from '../graph/ir.js';
import type { ArchBuild, Architecture } from './types.js';

export interface LlamaHyperParams {
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  ropeDims: number;
  ropeFreqBase: number;
  ropeFreqScale: number;
  rmsEps: number;
  vocabSize: number;
  tiedOutput: boolean;
  [key: string]: number | string | boolean;
}

function positiveInt(file: GgufFile, key: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AglmError('GGUF_MISSING_KEY', `Metadata key '${key}' must be a positive integer but is ${value}`);
  }
  return value;
}

export function readLlamaHyperParams(file: GgufFile, arch = 'llama'): LlamaHyperParams {
  const md = file.metadata;
  const req = (k: string) => positiveInt(file, `${arch}.${k}`, md.getNumber(`${arch}.${k}`));
  const embeddingLength = req('embedding_length');
  const headCount = req('attention.head_count');
  const headCountKv = md.optNumber(`${arch}.attention.head_count_kv`) ?? headCount;
  positiveInt(file, `${arch}.attention.head_count_kv`, headCountKv);
  if (headCount % headCountKv !== 0) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `${arch}.attention.head_count (${headCount}) is not a multiple of head_count_kv (${headCountKv})`);
  }
  const headDim = md.optNumber(`${arch}.attention.key_length`) ?? embeddingLength / headCount;
  if (!Number.isInteger(headDim) || headDim <= 0) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `${arch}.embedding_length (${embeddingLength}) is not a multiple of head_count (${headCount})`);
  }
  const ropeDims = md.optNumber(`${arch}.rope.dimension_count`) ?? headDim;
  if (!Number.isInteger(ropeDims) || ropeDims <= 0 || ropeDims > headDim || ropeDims % 2) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `${arch}.rope.dimension_count (${ropeDims}) must be even and at most the head size (${headDim})`);
  }
  const embd = file.tensor('token_embd.weight');
  if (!embd) throw new AglmError('GGUF_MISSING_TENSOR', `The model file has no tensor 'token_embd.weight'`);
  const vocabSize = md.optNumber(`${arch}.vocab_size`) ?? embd.dims[1] ?? 0;
  return {
    contextLength: req('context_length'),
    embeddingLength,
    blockCount: req('block_count'),
    feedForwardLength: req('feed_forward_length'),
    headCount,
    headCountKv,
    headDim,
    ropeDims,
    ropeFreqBase: md.optNumber(`${arch}.rope.freq_base`) ?? 10000,
    ropeFreqScale: ropeFreqScale(file, arch),
    rmsEps: md.getNumber(`${arch}.attention.layer_norm_rms_epsilon`),
    vocabSize: positiveInt(file, `${arch}.vocab_size`, vocabSize),
    tiedOutput: !file.tensor('output.weight'),
  };
}

/** Linear rope scaling: positions are multiplied by 1/factor (`rope.scaling.type = linear`, or the older `rope.scale_linear`). */
function ropeFreqScale(file: GgufFile, arch: string): number {
  const md = file.metadata;
  const type = md.optString(`${arch}.rope.scaling.type`);
  const factor = md.optNumber(`${arch}.rope.scaling.factor`) ?? md.optNumber(`${arch}.rope.scale_linear`);
  if (type !== undefined && type !== 'none' && type !== 'linear') {
    throw new AglmError('UNSUPPORTED_ARCH', `${arch}.rope.scaling.type '${type}' is not supported yet (supported: none, linear)`);
  }
  if (type === 'none' || factor === undefined || factor === 0) return 1;
  if (!(factor > 0)) throw new AglmError('GGUF_MISSING_KEY', `${arch}.rope.scaling.factor must be positive`);
  return 1 / factor;
}

export function buildLlamaGraph(file: GgufFile, hp: LlamaHyperParams): GraphBuilder & { logits: V } {
  const g = new GraphBuilder(file);
  const { embeddingLength: d, headCount: nh, headCountKv: nkv, headDim: hd, feedForwardLength: ff, vocabSize: nv } = hp;
  const rope = { headDim: hd, nRot: hp.ropeDims, mode: ROPE_NORMAL, freqBase: hp.ropeFreqBase, freqScale: hp.ropeFreqScale } as const;
  const embd = g.weight('token_embd.weight', [d, nv]);
  let x = g.embed(embd);
  for (let l = 0; l < hp.blockCount; l++) {
    const p = `blk.${l}.`;
    const h = g.rmsNorm(x, g.weight(`${p}attn_norm.weight`, [d]), hp.rmsEps);
    const q = g.matmul(h, g.weight(`${p}attn_q.weight`, [d, nh * hd]), g.optionalWeight(`${p}attn_q.bias`, [nh * hd]));
    const k = g.matmul(h, g.weight(`${p}attn_k.weight`, [d, nkv * hd]), g.optionalWeight(`${p}attn_k.bias`, [nkv * hd]));
    const v = g.matmul(h, g.weight(`${p}attn_v.weight`, [d, nkv * hd]), g.optionalWeight(`${p}attn_v.bias`, [nkv * hd]));
    const att = g.attention(g.rope(q, { heads: nh, ...rope }), g.rope(k, { heads: nkv, ...rope }), v, {
      nHead: nh,
      nHeadKv: nkv,
      headDim: hd,
      scale: 1 / Math.sqrt(hd),
    });
    x = g.add(x, g.matmul(att, g.weight(`${p}attn_output.weight`, [nh * hd, d]), g.optionalWeight(`${p}attn_output.bias`, [d])));
    const h2 = g.rmsNorm(x, g.weight(`${p}ffn_norm.weight`, [d]), hp.rmsEps);
    const gate = g.matmul(h2, g.weight(`${p}ffn_gate.weight`, [d, ff]));
    const up = g.matmul(h2, g.weight(`${p}ffn_up.weight`, [d, ff]));
    x = g.add(x, g.matmul(g.siluMul(gate, up), g.weight(`${p}ffn_down.weight`, [ff, d])));
  }
  const out = g.rmsNorm(g.outputRows(x), g.weight('output_norm.weight', [d]), hp.rmsEps);
  const logits = g.matmul(out, hp.tiedOutput ? embd : g.weight('output.weight', [d, nv]));
  return Object.assign(g, { logits });
}

export const llama: Architecture = {
  names: ['llama'],
  build(file: GgufFile): ArchBuild {
    const hparams = readLlamaHyperParams(file);
    const g = buildLlamaGraph(file, hparams);
    return { hparams, graph: g.build(g.logits) };
  },
};
