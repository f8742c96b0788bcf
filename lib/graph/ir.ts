// The model IR: weights (tensors of the model file), values (f32 activations [rows][width]) and ops. Built once per
// model by an architecture file (lib/arch/), validated again natively (native/core/graph.h mirrors these types).
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { ggmlTypeName } from '../gguf/index.js';

/** Must equal AGLM_IR_VERSION in native/core/graph.h. */
export const IR_VERSION = 1;

export type IrOpName = 'embed' | 'rms_norm' | 'matmul' | 'add' | 'mul' | 'silu_mul' | 'rope' | 'attention' | 'output_rows';

/** Rows of a value: one per token of the batch (0), or one per requested output (1). */
export const ROWS_TOKENS = 0;
export const ROWS_OUTPUTS = 1;

export interface IrWeight {
  name: string;
  type: number;
  dims: number[];
  offset: number;
  nbytes: number;
  /** Convert to this type once at load (set by the precision planner). */
  to?: number;
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
  output: number;
}

export const ROPE_NORMAL = 0;
export const ROPE_NEOX = 2;

export interface RopeParams {
  heads: number;
  headDim: number;
  nRot: number;
  mode: typeof ROPE_NORMAL | typeof ROPE_NEOX;
  freqBase: number;
  freqScale: number;
}

export interface AttentionParams {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  scale: number;
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

  /** The weight `name` if the file has it (checked against `dims`), else undefined. */
  optionalWeight(name: string, dims: number[]): number | undefined {
    return this.file.tensor(name) ? this.register(name, dims) : undefined;
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
    this.ops.push({ op: 'rope', out: out.id, in: [x.id], i: [p.heads, p.headDim, p.nRot, p.mode], f: [p.freqBase, p.freqScale] });
    return out;
  }

  /** Stores k and v in a new KV cache slot and attends q over it (causal). */
  attention(q: V, k: V, v: V, p: AttentionParams): V {
    const slot = this.cache.length;
    this.cache.push({ k: k.width, v: v.width });
    const out = this.value(q.rows, q.width);
    this.ops.push({ op: 'attention', out: out.id, in: [q.id, k.id, v.id], i: [slot, p.nHead, p.nHeadKv, p.headDim], f: [p.scale] });
    return out;
  }

  /** Keeps only the rows whose logits are wanted (the last token's, or all). */
  outputRows(x: V): V {
    const out = this.value(ROWS_OUTPUTS, x.width);
    this.ops.push({ op: 'output_rows', out: out.id, in: [x.id] });
    return out;
  }

  build(output: V): IrGraph {
    return {
      version: IR_VERSION,
      weights: this.weights,
      values: this.values,
      ops: this.ops,
      cache: this.cache,
      output: output.id,
    };
  }
}
