// An independent float64 statement of the bert forward pass (llama.cpp's graph for GGUF arch `bert`), over the F32
// tensors of a GGUF file: token + token-type row 0 + position embeddings, LayerNorm, then per block non-causal
// multi-head attention with biases, residual + LayerNorm, GELU (tanh form) FFN with biases, residual + LayerNorm.
// Returns every token's final hidden state. Shares no code with lib/arch or the native kernels.
import { readFileSync } from 'node:fs';
import { readGguf } from '../../lib/gguf/index.js';

type Vec = Float64Array;

export interface BertWeights {
  d: number;
  heads: number;
  layers: number;
  eps: number;
  tensor(name: string): Float64Array;
  has(name: string): boolean;
}

export async function readBertWeights(path: string): Promise<BertWeights> {
  const file = await readGguf(path);
  const bytes = readFileSync(path);
  const md = file.metadata;
  const cache = new Map<string, Float64Array>();
  return {
    d: md.getNumber('bert.embedding_length'),
    heads: md.getNumber('bert.attention.head_count'),
    layers: md.getNumber('bert.block_count'),
    eps: md.getNumber('bert.attention.layer_norm_epsilon'),
    has: (name) => file.tensor(name) !== undefined,
    tensor(name) {
      let v = cache.get(name);
      if (v) return v;
      const t = file.tensor(name);
      if (!t || t.type !== 0) throw new Error(`reference: ${name} missing or not F32`);
      const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + t.byteLength));
      v = Float64Array.from(f);
      cache.set(name, v);
      return v;
    },
  };
}

/** y = W x + b for W stored as [rows][cols] (GGUF dims [cols, rows]). */
function linear(W: Float64Array, b: Float64Array | undefined, x: Vec, rows: number, cols: number, row0 = 0): Vec {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const off = (row0 + r) * cols;
    for (let c = 0; c < cols; c++) s += W[off + c] * x[c];
    y[r] = s + (b ? b[row0 + r] : 0);
  }
  return y;
}

function layerNorm(x: Vec, w: Float64Array, b: Float64Array, eps: number): Vec {
  const n = x.length;
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  let v2 = 0;
  for (const v of x) v2 += (v - mean) ** 2;
  const s = 1 / Math.sqrt(v2 / n + eps);
  return x.map((v, i) => (v - mean) * s * w[i] + b[i]);
}

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
}

const add = (a: Vec, b: Vec): Vec => a.map((v, i) => v + b[i]);

/** Every token's final hidden state, [tokens.length][d]. */
export function bertReference(W: BertWeights, tokens: ArrayLike<number>): Vec[] {
  const { d, heads } = W;
  const hd = d / heads;
  const n = tokens.length;
  const tok = W.tensor('token_embd.weight'), pos = W.tensor('position_embd.weight');
  const types = W.has('token_types.weight') ? W.tensor('token_types.weight') : undefined;
  let x: Vec[] = [];
  for (let t = 0; t < n; t++) {
    const e = new Float64Array(d);
    for (let i = 0; i < d; i++) e[i] = tok[tokens[t] * d + i] + (types ? types[i] : 0) + pos[t * d + i];
    x.push(layerNorm(e, W.tensor('token_embd_norm.weight'), W.tensor('token_embd_norm.bias'), W.eps));
  }
  for (let l = 0; l < W.layers; l++) {
    const p = `blk.${l}.`;
    const qkv = (x: Vec, which: number): Vec =>
      W.has(`${p}attn_qkv.weight`)
        ? linear(W.tensor(`${p}attn_qkv.weight`), W.tensor(`${p}attn_qkv.bias`), x, d, d, which * d)
        : linear(W.tensor(`${p}attn_${'qkv'[which]}.weight`), W.tensor(`${p}attn_${'qkv'[which]}.bias`), x, d, d);
    const q = x.map((v) => qkv(v, 0)), k = x.map((v) => qkv(v, 1)), v = x.map((v) => qkv(v, 2));
    const next: Vec[] = [];
    for (let t = 0; t < n; t++) {
      const att = new Float64Array(d);
      for (let h = 0; h < heads; h++) {
        const s = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t][h * hd + i] * k[j][h * hd + i];
          s[j] = dot / Math.sqrt(hd);
        }
        const max = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += s[j] = Math.exp(s[j] - max);
        for (let j = 0; j < n; j++) for (let i = 0; i < hd; i++) att[h * hd + i] += (s[j] / sum) * v[j][h * hd + i];
      }
      const o = linear(W.tensor(`${p}attn_output.weight`), W.tensor(`${p}attn_output.bias`), att, d, d);
      const hN = layerNorm(add(o, x[t]), W.tensor(`${p}attn_output_norm.weight`), W.tensor(`${p}attn_output_norm.bias`), W.eps);
      const ff = W.tensor(`${p}ffn_up.bias`).length;
      const up = linear(W.tensor(`${p}ffn_up.weight`), W.tensor(`${p}ffn_up.bias`), hN, ff, d).map(gelu);
      const down = linear(W.tensor(`${p}ffn_down.weight`), W.tensor(`${p}ffn_down.bias`), up, d, ff);
      next.push(layerNorm(add(down, hN), W.tensor(`${p}layer_output_norm.weight`), W.tensor(`${p}layer_output_norm.bias`), W.eps));
    }
    x = next;
  }
  return x;
}

/** Mean / first / last row, then (optionally) divided by the L2 norm, in float64. */
export function poolReference(rows: Vec[], pooling: 'mean' | 'cls' | 'last', normalize = true): Vec {
  const d = rows[0].length;
  let v: Vec;
  if (pooling === 'cls') v = rows[0].slice();
  else if (pooling === 'last') v = rows[rows.length - 1].slice();
  else {
    v = new Float64Array(d);
    for (const r of rows) for (let i = 0; i < d; i++) v[i] += r[i] / rows.length;
  }
  if (!normalize) return v;
  const norm = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
  return v.map((x) => x / norm);
}
