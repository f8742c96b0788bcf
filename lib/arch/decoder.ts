// The pre-norm decoder shared by the llama-like architectures (llama, qwen2, chatglm, glm4): hyper-parameters from
// `<arch>.*` metadata, and one forward graph whose per-architecture differences (rope pairing, fused or separate
// QKV, fused gate/up, post-norms, rope frequency factors) are a `DecoderLayout`. Tensor names are llama.cpp's.
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { GraphBuilder, ROPE_MROPE, ROPE_NEOX, ROPE_NORMAL, type RopeParams, type V } from '../graph/ir.js';
import type { ArchBuild, Architecture } from './types.js';

export interface DecoderHyperParams {
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  ropeDims: number;
  ropeFreqBase: number;
  /** Linear rope scaling (1 / rope.scaling.factor), 1 when none. */
  ropeFreqScale: number;
  /** 'none', 'linear' or 'yarn' (llama 3's frequency factors come as the tensor rope_freqs.weight instead). */
  ropeScaling: string;
  /**
   * Multi-section rope (`rope.dimension_sections`, e.g. '8,12,12,0' for GLM-4.1V): rotary pairs per position plane
   * (temporal, height, width, extra), as llama.cpp's M-RoPE; '' for a plain rope. Images then take 3-D positions.
   */
  ropeSections: string;
  rmsEps: number;
  vocabSize: number;
  tiedOutput: boolean;
  /** `<arch>.attention.sliding_window` as the file states it (0 if absent); whether it applies is the layout's call. */
  slidingWindow: number;
  [key: string]: number | string | boolean;
}

export interface DecoderLayout {
  /** Rotary pairs: (x[2i], x[2i+1]) (ROPE_NORMAL) or (x[i], x[i + n_rot/2]) (ROPE_NEOX), as llama.cpp's rope type. */
  ropeMode: typeof ROPE_NORMAL | typeof ROPE_NEOX;
  /**
   * 'separate': attn_q/k/v (+ optional biases). 'fused-or-separate': attn_qkv (q rows, then k, then v; optional
   * attn_qkv.bias) when the file has it, else separate tensors, as llama.cpp's create_tensor_qkv.
   */
  qkv: 'separate' | 'fused-or-separate';
  /** Biases of attn_q/k/v are required (qwen2) rather than optional. */
  qkvBiasRequired?: boolean;
  /** 'gate-up': ffn_gate and ffn_up; 'fused-up': ffn_up holds 2 * n_ff rows, the gate first (silu(first) * second). */
  ffn: 'gate-up' | 'fused-up';
  /** RMS norms of the attention and FFN outputs before each residual add (glm4: post_attention_norm, post_ffw_norm). */
  postNorms?: boolean;
  /** Llama 3 rope scaling: the optional `rope_freqs.weight` divides each rotary frequency. */
  ropeFreqFactors?: boolean;
  /**
   * Apply `<arch>.attention.sliding_window`. llama.cpp applies it to none of the architectures here (llama, qwen2,
   * chatglm and glm4 never read the key), so none of them sets this; the attention op supports it for those that will.
   */
  slidingWindow?: boolean;
}

function positiveInt(key: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AglmError('GGUF_MISSING_KEY', `Metadata key '${key}' must be a positive integer but is ${value}`);
  }
  return value;
}

export function readDecoderHyperParams(file: GgufFile, arch: string): DecoderHyperParams {
  const md = file.metadata;
  const req = (k: string) => positiveInt(`${arch}.${k}`, md.getNumber(`${arch}.${k}`));
  const embeddingLength = req('embedding_length');
  const headCount = req('attention.head_count');
  const headCountKv = md.optNumber(`${arch}.attention.head_count_kv`) ?? headCount;
  positiveInt(`${arch}.attention.head_count_kv`, headCountKv);
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
  const sectionsRaw = md.optNumberArray(`${arch}.rope.dimension_sections`);
  let ropeSections = '';
  if (sectionsRaw) {
    const s = Array.from(sectionsRaw as ArrayLike<number>);
    if (s.length < 3 || s.length > 4 || s.some((x) => !Number.isInteger(x) || x < 0)) {
      throw new AglmError('GGUF_MISSING_KEY', `${arch}.rope.dimension_sections must be 3 or 4 non-negative integers, not [${s.join(', ')}]`);
    }
    // llama.cpp uses M-RoPE when the first two sections are set.
    if (s[0] > 0 && s[1] > 0) {
      if (s[0] + s[1] + s[2] > ropeDims / 2) {
        throw new AglmError('GGUF_SHAPE_MISMATCH', `${arch}.rope.dimension_sections [${s.join(', ')}] cover more than the ${ropeDims / 2} rotary pairs`);
      }
      ropeSections = `${s[0]},${s[1]},${s[2]},${s[3] ?? 0}`;
    }
  }
  const embd = file.tensor('token_embd.weight');
  if (!embd) throw new AglmError('GGUF_MISSING_TENSOR', `The model file has no tensor 'token_embd.weight'`);
  const vocabSize = md.optNumber(`${arch}.vocab_size`) ?? embd.dims[1] ?? 0;
  const scaling = ropeScaling(file, arch);
  const window = md.optNumber(`${arch}.attention.sliding_window`) ?? 0;
  if (!Number.isInteger(window) || window < 0) {
    throw new AglmError('GGUF_MISSING_KEY', `Metadata key '${arch}.attention.sliding_window' must be a non-negative integer but is ${window}`);
  }
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
    ropeFreqScale: scaling.freqScale,
    ropeScaling: scaling.type,
    ropeSections,
    rmsEps: md.getNumber(`${arch}.attention.layer_norm_rms_epsilon`),
    vocabSize: positiveInt(`${arch}.vocab_size`, vocabSize),
    tiedOutput: !file.tensor('output.weight'),
    slidingWindow: window,
  };
}

/**
 * `rope.scaling.type`: none, linear (positions times 1/factor; also the older `rope.scale_linear`) or yarn;
 * anything else (longrope, ...) is UNSUPPORTED_ARCH.
 */
function ropeScaling(file: GgufFile, arch: string): { type: string; freqScale: number } {
  const md = file.metadata;
  const type = md.optString(`${arch}.rope.scaling.type`);
  const factor = md.optNumber(`${arch}.rope.scaling.factor`) ?? md.optNumber(`${arch}.rope.scale_linear`);
  if (type !== undefined && type !== 'none' && type !== 'linear' && type !== 'yarn') {
    throw new AglmError('UNSUPPORTED_ARCH', `${arch}.rope.scaling.type '${type}' is not supported yet (supported: none, linear, yarn)`);
  }
  if (type === 'none' || factor === undefined || factor === 0) return { type: 'none', freqScale: 1 };
  if (!(factor > 0)) throw new AglmError('GGUF_MISSING_KEY', `${arch}.rope.scaling.factor must be positive`);
  return { type: type ?? 'linear', freqScale: 1 / factor };
}

/**
 * The YaRN parameters llama.cpp derives from the file (llama_context's cparams): ext_factor 1, beta fast/slow 32/1
 * (or `rope.scaling.yarn_beta_fast/slow`), the original context from `rope.scaling.original_context_length`, and an
 * attention factor that, with ggml's own 1 + 0.1 ln(factor) in rope_yarn, scales cos/sin by that once, times
 * `rope.scaling.attn_factor`. DeepSeek's `rope.scaling.yarn_log_multiplier` is not supported.
 */
function yarnParams(file: GgufFile, arch: string, hp: DecoderHyperParams): NonNullable<RopeParams['yarn']> {
  const md = file.metadata;
  const logMul = md.optNumber(`${arch}.rope.scaling.yarn_log_multiplier`) ?? 0;
  if (logMul !== 0) throw new AglmError('UNSUPPORTED_ARCH', `${arch}.rope.scaling.yarn_log_multiplier is not supported yet`);
  const factor = 1 / hp.ropeFreqScale;
  const mscale = factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1;
  // Divided by what rope_yarn multiplies in again, so the net cos/sin scale is mscale * rope.scaling.attn_factor.
  const attnFactor = (mscale / (1 + 0.1 * Math.log(factor))) * (md.optNumber(`${arch}.rope.scaling.attn_factor`) ?? 1);
  return {
    extFactor: 1,
    attnFactor,
    betaFast: md.optNumber(`${arch}.rope.scaling.yarn_beta_fast`) ?? 32,
    betaSlow: md.optNumber(`${arch}.rope.scaling.yarn_beta_slow`) ?? 1,
    nCtxOrig: md.optNumber(`${arch}.rope.scaling.original_context_length`) ?? hp.contextLength,
  };
}

/** The forward graph: logits, and the final-norm hidden states (evaluate({ hidden })). */
export function buildDecoderGraph(file: GgufFile, hp: DecoderHyperParams, layout: DecoderLayout, arch: string): GraphBuilder & { logits: V; hidden: V } {
  const g = new GraphBuilder(file);
  const { embeddingLength: d, headCount: nh, headCountKv: nkv, headDim: hd, feedForwardLength: ff, vocabSize: nv } = hp;
  const qw = nh * hd, kvw = nkv * hd;
  const freqFactors = layout.ropeFreqFactors && !hp.ropeSections ? g.optionalWeight('rope_freqs.weight', [hp.ropeDims / 2]) : undefined;
  const rope = {
    headDim: hd,
    nRot: hp.ropeDims,
    mode: (hp.ropeSections ? ROPE_MROPE : layout.ropeMode) as RopeParams['mode'],
    ...(hp.ropeSections ? { sections: hp.ropeSections.split(',').slice(0, 3).map(Number) as [number, number, number] } : {}),
    freqBase: hp.ropeFreqBase,
    freqScale: hp.ropeFreqScale,
    freqFactors,
    yarn: hp.ropeScaling === 'yarn' ? yarnParams(file, arch, hp) : undefined,
  };
  const attention = { nHead: nh, nHeadKv: nkv, headDim: hd, scale: 1 / Math.sqrt(hd), slidingWindow: layout.slidingWindow ? hp.slidingWindow : 0 };
  const embd = g.weight('token_embd.weight', [d, nv]);
  let x = g.embed(embd);
  for (let l = 0; l < hp.blockCount; l++) {
    const p = `blk.${l}.`;
    const h = g.rmsNorm(x, g.weight(`${p}attn_norm.weight`, [d]), hp.rmsEps);
    let q: V, k: V, v: V;
    if (layout.qkv === 'fused-or-separate' && g.hasTensor(`${p}attn_qkv.weight`)) {
      const w = `${p}attn_qkv.weight`, b = `${p}attn_qkv.bias`;
      const dims = [d, qw + 2 * kvw];
      const bias = g.hasTensor(b);
      const part = (start: number, n: number) => g.matmul(h, g.weightRows(w, dims, start, n), bias ? g.weightRows(b, [qw + 2 * kvw], start, n) : undefined);
      q = part(0, qw);
      k = part(qw, kvw);
      v = part(qw + kvw, kvw);
    } else {
      const bias = (name: string, n: number) => (layout.qkvBiasRequired ? g.weight(name, [n]) : g.optionalWeight(name, [n]));
      q = g.matmul(h, g.weight(`${p}attn_q.weight`, [d, qw]), bias(`${p}attn_q.bias`, qw));
      k = g.matmul(h, g.weight(`${p}attn_k.weight`, [d, kvw]), bias(`${p}attn_k.bias`, kvw));
      v = g.matmul(h, g.weight(`${p}attn_v.weight`, [d, kvw]), bias(`${p}attn_v.bias`, kvw));
    }
    const att = g.attention(g.rope(q, { heads: nh, ...rope }), g.rope(k, { heads: nkv, ...rope }), v, attention);
    let attOut = g.matmul(att, g.weight(`${p}attn_output.weight`, [qw, d]), g.optionalWeight(`${p}attn_output.bias`, [d]));
    if (layout.postNorms) attOut = g.rmsNorm(attOut, g.weight(`${p}post_attention_norm.weight`, [d]), hp.rmsEps);
    x = g.add(x, attOut);
    const h2 = g.rmsNorm(x, g.weight(`${p}ffn_norm.weight`, [d]), hp.rmsEps);
    let gate: V, up: V;
    if (layout.ffn === 'fused-up') {
      const w = `${p}ffn_up.weight`;
      gate = g.matmul(h2, g.weightRows(w, [d, 2 * ff], 0, ff));
      up = g.matmul(h2, g.weightRows(w, [d, 2 * ff], ff, ff));
    } else {
      gate = g.matmul(h2, g.weight(`${p}ffn_gate.weight`, [d, ff]));
      up = g.matmul(h2, g.weight(`${p}ffn_up.weight`, [d, ff]));
    }
    let ffnOut = g.matmul(g.siluMul(gate, up), g.weight(`${p}ffn_down.weight`, [ff, d]));
    if (layout.postNorms) ffnOut = g.rmsNorm(ffnOut, g.weight(`${p}post_ffw_norm.weight`, [d]), hp.rmsEps);
    x = g.add(x, ffnOut);
  }
  const hidden = g.rmsNorm(g.outputRows(x), g.weight('output_norm.weight', [d]), hp.rmsEps);
  const logits = g.matmul(hidden, hp.tiedOutput ? embd : g.weight('output.weight', [d, nv]));
  return Object.assign(g, { logits, hidden });
}

/** The architecture `name` (its `general.architecture` and key prefix) as the decoder with `layout`; `check` may reject a file first. */
export function decoderArchitecture(name: string, layout: DecoderLayout, check?: (file: GgufFile) => void): Architecture {
  return {
    names: [name],
    build(file: GgufFile): ArchBuild {
      check?.(file);
      const hparams = readDecoderHyperParams(file, name);
      const g = buildDecoderGraph(file, hparams, layout, name);
      return { hparams, graph: g.build(g.logits, g.hidden) };
    },
  };
}
