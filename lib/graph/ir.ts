// The model IR: weights (tensors of the model file), values (f32 activations [rows][width]) and ops. Built once per
// model by an architecture file (lib/arch/), validated again natively (native/core/graph.h mirrors these types).
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { ggmlRowBytes, ggmlTypeInfo, ggmlTypeName } from '../gguf/index.js';

/** Must equal AGLM_IR_VERSION in native/core/graph.h. */
export const IR_VERSION = 2;

export type IrOpName =
  | 'embed'
  | 'rms_norm'
  | 'matmul'
  | 'add'
  | 'mul'
  | 'silu_mul'
  | 'rope'
  | 'attention'
  | 'output_rows'
  | 'layer_norm'
  | 'gelu'
  | 'embed_positions'
  | 'add_vector'
  | 'input'
  | 'embed_interp'
  | 'merge_rows'
  | 'gelu_erf';

/** Rows of a value: one per token of the batch (0), or one per requested output (1). */
export const ROWS_TOKENS = 0;
export const ROWS_OUTPUTS = 1;

export interface IrWeight {
  name: string;
  type: number;
  dims: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  nbytes: number;
  /** Convert to this type once at load (set by the precision planner). */
  to?: number;
  /**
   * For a view (GraphBuilder.weightRows): the file tensor whose rows it is. A view is an ordinary weight to native
   * code (its offset and size select the rows in place), so conversion and repacking treat it as a matrix of its own.
   */
  source?: string;
}
export interface IrValue {
  rows: typeof ROWS_TOKENS | typeof ROWS_OUTPUTS;
  width: number;
}
export interface IrOp {
  op: IrOpName;
  out: number;
  in?: number[];
  w?: number[];
  i?: number[];
  f?: number[];
}
export interface IrGraph {
  version: number;
  weights: IrWeight[];
  values: IrValue[];
  ops: IrOp[];
  /** KV cache slots: widths of the keys and values stored per position. */
  cache: { k: number; v: number }[];
  /** The logits value (output rows, width n_vocab). */
  output: number;
  /** The hidden states after the final norm (output rows, width n_embd), if the architecture marks them. */
  hidden?: number;
}

export const ROPE_NORMAL = 0;
export const ROPE_NEOX = 2;
/** Multi-section rope (M-RoPE: Qwen2-VL, GLM-4.1V text): neox pairs, each section of pairs on its own position plane. */
export const ROPE_MROPE = 8;
/** 2-D rope of image patches: neox pairs over the whole head, the first section by row, the second by column. */
export const ROPE_VISION = 24;

export interface RopeParams {
  heads: number;
  headDim: number;
  /** Rotated dimensions at the start of each head (the rest pass through). */
  nRot: number;
  mode: typeof ROPE_NORMAL | typeof ROPE_NEOX | typeof ROPE_MROPE | typeof ROPE_VISION;
  /** ROPE_MROPE / ROPE_VISION: pairs per position plane (t, h, w for M-RoPE; rows, columns for vision). */
  sections?: [number, number, number];
  freqBase: number;
  /** Linear scaling: positions are multiplied by it (1 = none). */
  freqScale: number;
  /** A weight of nRot/2 factors each rotary frequency is divided by (Llama 3's `rope_freqs.weight`). */
  freqFactors?: number;
  /** YaRN (ggml's rope_yarn): with extFactor != 0, blends interpolated and extrapolated angles and scales cos/sin. */
  yarn?: { extFactor: number; attnFactor: number; betaFast: number; betaSlow: number; nCtxOrig: number };
}

export interface AttentionParams {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  scale: number;
  /** Sliding window: a token at position p attends to positions > p - slidingWindow. 0 or undefined: all. */
  slidingWindow?: number;
  /**
   * false: every token sees every position of its sequence (BERT-style encoders); such a model evaluates each
   * sequence in one batch from an empty context. Default true.
   */
  causal?: boolean;
  /**
   * Reuse this cache slot (of an earlier attention op with the same widths) instead of a new one: an encoder that
   * evaluates each sequence in one batch needs no layer's keys after that layer (one slot serves every layer).
   */
  slot?: number;
}

/** A value handle: its index and shape. */
export interface V {
  id: number;
  rows: IrValue['rows'];
  width: number;
}

/** Builds a graph over the tensors of one GGUF file, checking each tensor's presence and shape as it is used. */
export class GraphBuilder {
  private readonly weights: IrWeight[] = [];
  private readonly weightIds = new Map<string, number>();
  private readonly values: IrValue[] = [];
  private readonly ops: IrOp[] = [];
  private readonly cache: { k: number; v: number }[] = [];

  constructor(private readonly file: GgufFile) {}

  hasTensor(name: string): boolean {
    return this.file.tensor(name) !== undefined;
  }

  /** The weight `name`, which must exist with exactly `dims` (ne order). */
  weight(name: string, dims: number[]): number {
    const t = this.file.tensor(name);
    if (!t) throw new AglmError('GGUF_MISSING_TENSOR', `The model file has no tensor '${name}', which its architecture requires`);
    return this.register(name, dims);
  }

  /**
   * The weight `name`, which must exist with exactly `fileDims`, read as a tensor of `dims` (the same elements in the
   * same order: a convolution kernel [kw, kh, c, n] as the matrix [kw * kh * c, n]).
   */
  weightAs(name: string, fileDims: number[], dims: number[]): number {
    const t = this.file.tensor(name);
    if (!t) throw new AglmError('GGUF_MISSING_TENSOR', `The model file has no tensor '${name}', which its architecture requires`);
    const existing = this.weightIds.get(name);
    if (existing !== undefined) return existing;
    const same = t.dims.length === fileDims.length && t.dims.every((d, i) => d === fileDims[i]);
    const count = (d: number[]) => d.reduce((a, b) => a * b, 1);
    if (!same || count(fileDims) !== count(dims) || dims[0] % t.dims[0] !== 0) {
      throw new AglmError('GGUF_SHAPE_MISMATCH', `Tensor '${name}' has shape [${t.dims.join(', ')}] (${ggmlTypeName(t.type)}) but the model's hyper-parameters need [${fileDims.join(', ')}]`);
    }
    const id = this.weights.length;
    this.weights.push({ name, type: t.type, dims: dims.slice(), offset: t.offset, nbytes: t.byteLength });
    this.weightIds.set(name, id);
    return id;
  }

  /** The weight `name` if the file has it (checked against `dims`), else undefined. */
  optionalWeight(name: string, dims: number[]): number | undefined {
    return this.file.tensor(name) ? this.register(name, dims) : undefined;
  }

  /**
   * Rows [start, start + count) of the weight `name` (which must have exactly `dims`) as a weight of their own, read
   * in place: a matrix [dims[0], dims[1]] gives [dims[0], count] (whole rows, so any block type works); a vector
   * [n] gives [count] elements (float types only). Fused tensors (attn_qkv, ffn_up holding gate and up) are used so.
   */
  weightRows(name: string, dims: number[], start: number, count: number): number {
    this.weight(name, dims);
    const viewName = `${name}[${start}:${start + count}]`;
    const existing = this.weightIds.get(viewName);
    if (existing !== undefined) return existing;
    const t = this.file.tensor(name)!;
    const rows = dims.length === 1 ? dims[0] : dims[1];
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count <= 0 || start + count > rows) {
      throw new AglmError('GGUF_SHAPE_MISMATCH', `Rows ${start}..${start + count} of tensor '${name}' are outside its ${rows} rows`);
    }
    let rowBytes: number;
    if (dims.length === 1) {
      const info = ggmlTypeInfo(t.type);
      if (!info || info.blockSize !== 1) {
        throw new AglmError('UNSUPPORTED_TENSOR_TYPE', `Tensor '${name}' is a ${ggmlTypeName(t.type)} vector; only float vectors can be split`);
      }
      rowBytes = info.typeSize;
    } else {
      rowBytes = ggmlRowBytes(t.type, dims[0]);
    }
    const id = this.weights.length;
    this.weights.push({
      name: viewName,
      type: t.type,
      dims: dims.length === 1 ? [count] : [dims[0], count],
      offset: t.offset + start * rowBytes,
      nbytes: count * rowBytes,
      source: name,
    });
    this.weightIds.set(viewName, id);
    return id;
  }

  private register(name: string, dims: number[]): number {
    const existing = this.weightIds.get(name);
    if (existing !== undefined) return existing;
    const t = this.file.tensor(name)!;
    const same = t.dims.length === dims.length && t.dims.every((d, i) => d === dims[i]);
    // A trailing dimension of 1 is the same shape (some writers keep it).
    const padded = !same && t.dims.length > dims.length && t.dims.every((d, i) => (i < dims.length ? d === dims[i] : d === 1));
    if (!same && !padded) {
      throw new AglmError(
        'GGUF_SHAPE_MISMATCH',
        `Tensor '${name}' has shape [${t.dims.join(', ')}] (${ggmlTypeName(t.type)}) but the model's hyper-parameters need [${dims.join(', ')}]`,
      );
    }
    const id = this.weights.length;
    this.weights.push({ name, type: t.type, dims: t.dims.slice(), offset: t.offset, nbytes: t.byteLength });
    this.weightIds.set(name, id);
    return id;
  }

  private value(rows: IrValue['rows'], width: number): V {
    const id = this.values.length;
    this.values.push({ rows, width });
    return { id, rows, width };
  }

  private dims(w: number): number[] {
    return this.weights[w].dims;
  }

  embed(table: number): V {
    const out = this.value(ROWS_TOKENS, this.dims(table)[0]);
    this.ops.push({ op: 'embed', out: out.id, w: [table] });
    return out;
  }

  rmsNorm(x: V, weight: number, eps: number): V {
    const out = this.value(x.rows, x.width);
    this.ops.push({ op: 'rms_norm', out: out.id, in: [x.id], w: [weight], f: [eps] });
    return out;
  }

  matmul(x: V, weight: number, bias?: number): V {
    const out = this.value(x.rows, this.dims(weight)[1]);
    this.ops.push({ op: 'matmul', out: out.id, in: [x.id], w: bias === undefined ? [weight] : [weight, bias] });
    return out;
  }

  add(a: V, b: V): V {
    return this.binary('add', a, b);
  }

  mul(a: V, b: V): V {
    return this.binary('mul', a, b);
  }

  /** silu(gate) * up */
  siluMul(gate: V, up: V): V {
    return this.binary('silu_mul', gate, up);
  }

  private binary(op: IrOpName, a: V, b: V): V {
    const out = this.value(a.rows, a.width);
    this.ops.push({ op, out: out.id, in: [a.id, b.id] });
    return out;
  }

  rope(x: V, p: RopeParams): V {
    const out = this.value(x.rows, x.width);
    const y = p.yarn ?? { extFactor: 0, attnFactor: 1, betaFast: 0, betaSlow: 0, nCtxOrig: 0 };
    this.ops.push({
      op: 'rope',
      out: out.id,
      in: [x.id],
      ...(p.freqFactors !== undefined ? { w: [p.freqFactors] } : {}),
      i: [p.heads, p.headDim, p.nRot, p.mode, y.nCtxOrig, ...(p.sections ?? [0, 0, 0])],
      f: [p.freqBase, p.freqScale, y.extFactor, y.attnFactor, y.betaFast, y.betaSlow],
    });
    return out;
  }

  /** Stores k and v in a new KV cache slot and attends q over it (causal). */
  attention(q: V, k: V, v: V, p: AttentionParams): V {
    let slot = p.slot ?? this.cache.length;
    if (p.slot === undefined) this.cache.push({ k: k.width, v: v.width });
    else if (!this.cache[slot] || this.cache[slot].k !== k.width || this.cache[slot].v !== v.width) {
      throw new AglmError('INVALID_ARGUMENT', `attention: cache slot ${slot} does not exist with these widths`);
    }
    const out = this.value(q.rows, q.width);
    this.ops.push({
      op: 'attention',
      out: out.id,
      in: [q.id, k.id, v.id],
      i: [slot, p.nHead, p.nHeadKv, p.headDim, p.slidingWindow ?? 0, p.causal === false ? 1 : 0],
      f: [p.scale],
    });
    return out;
  }

  /** (x - mean) / sqrt(variance + eps) * weight (+ bias), per row. */
  layerNorm(x: V, weight: number, bias: number | undefined, eps: number): V {
    const out = this.value(x.rows, x.width);
    this.ops.push({ op: 'layer_norm', out: out.id, in: [x.id], w: bias === undefined ? [weight] : [weight, bias], f: [eps] });
    return out;
  }

  /** ggml's GELU (tanh approximation), elementwise. */
  gelu(x: V): V {
    const out = this.value(x.rows, x.width);
    this.ops.push({ op: 'gelu', out: out.id, in: [x.id] });
    return out;
  }

  /** Row (position of each token) of a learned position-embedding table [width, n_positions]. */
  embedPositions(table: number): V {
    const out = this.value(ROWS_TOKENS, this.dims(table)[0]);
    this.ops.push({ op: 'embed_positions', out: out.id, w: [table] });
    return out;
  }

  /** x + vector (a weight of `width` elements) on every row. */
  addVector(x: V, vector: number): V {
    const out = this.value(x.rows, x.width);
    this.ops.push({ op: 'add_vector', out: out.id, in: [x.id], w: [vector] });
    return out;
  }

  /** Each token's input row (the batch brings them: image patches, or embeddings given in place of tokens). */
  input(width: number): V {
    const out = this.value(ROWS_TOKENS, width);
    this.ops.push({ op: 'input', out: out.id });
    return out;
  }

  /**
   * A learned position grid (weight [width, cols * rows], f32) sampled bicubically at each token's source coordinates
   * (the batch's grid positions): a position table resized to an image's patch grid.
   */
  embedInterp(grid: number, cols: number, rows: number): V {
    const out = this.value(ROWS_TOKENS, this.dims(grid)[0]);
    this.ops.push({ op: 'embed_interp', out: out.id, w: [grid], i: [cols, rows] });
    return out;
  }

  /** Output rows, each `k` consecutive token rows from an output row on, interleaved (out[c * k + j] = row j's c). */
  mergeRows(x: V, k: number): V {
    const out = this.value(ROWS_OUTPUTS, x.width * k);
    this.ops.push({ op: 'merge_rows', out: out.id, in: [x.id], i: [k] });
    return out;
  }

  /** The exact GELU 0.5 x (1 + erf(x / sqrt 2)), elementwise. */
  geluErf(x: V): V {
    const out = this.value(x.rows, x.width);
    this.ops.push({ op: 'gelu_erf', out: out.id, in: [x.id] });
    return out;
  }

  /** Keeps only the rows whose logits are wanted (the last token's, or all). */
  outputRows(x: V): V {
    const out = this.value(ROWS_OUTPUTS, x.width);
    this.ops.push({ op: 'output_rows', out: out.id, in: [x.id] });
    return out;
  }

  /** The graph computing `output` (the logits); `hidden` marks the final-norm states evaluate({ hidden }) returns. */
  build(output: V, hidden?: V): IrGraph {
    return {
      version: IR_VERSION,
      weights: this.weights,
      values: this.values,
      ops: this.ops,
      cache: this.cache,
      output: output.id,
      ...(hidden ? { hidden: hidden.id } : {}),
    };
  }
}
