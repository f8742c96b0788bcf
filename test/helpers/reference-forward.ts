// A scalar TypeScript forward pass of the decoder architectures (llama, qwen2, chatglm, glm4), straight from their
// definitions, for F32 files: the independent reference the native graph is checked against (rope variants and
// frequency factors, YaRN, fused QKV / gate-up, post-norms, grouped KV heads, sliding-window attention). Sums in
// double; slow, meant for small random models.
import { readFileSync } from 'node:fs';
import type { GgufFile } from '../../lib/index.js';

export interface ReferenceConfig {
  arch: 'llama' | 'qwen2' | 'chatglm' | 'glm4';
  /** Attend only to positions > p - window (0: all). */
  slidingWindow?: number;
}

/** Logits of every position of `tokens` evaluated from position 0: [tokens.length * n_vocab]. */
export function referenceLogits(path: string, gguf: GgufFile, tokens: number[], config: ReferenceConfig): Float32Array {
  const bytes = readFileSync(path);
  const md = gguf.metadata;
  const a = config.arch;
  const num = (k: string, dflt?: number) => md.optNumber(`${a}.${k}`) ?? (dflt !== undefined ? dflt : md.getNumber(`${a}.${k}`));
  const d = num('embedding_length'), nh = num('attention.head_count'), nkv = num('attention.head_count_kv', nh);
  const ff = num('feed_forward_length'), layers = num('block_count'), eps = num('attention.layer_norm_rms_epsilon');
  const hd = d / nh, nRot = num('rope.dimension_count', hd), base = num('rope.freq_base', 10000);
  const scalingType = md.optString(`${a}.rope.scaling.type`) ?? 'none';
  const factor = md.optNumber(`${a}.rope.scaling.factor`) ?? 1;
  const freqScale = scalingType === 'none' ? 1 : 1 / factor;
  const nCtxOrig = md.optNumber(`${a}.rope.scaling.original_context_length`) ?? num('context_length');
  const neox = a === 'qwen2';
  const glm = a === 'chatglm' || a === 'glm4';

  const tensor = (name: string): Float32Array | undefined => {
    const t = gguf.tensor(name);
    if (!t) return undefined;
    if (t.type !== 0) throw new Error(`reference forward reads F32 tensors only (${name})`);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + t.byteLength));
  };
  const need = (name: string) => {
    const t = tensor(name);
    if (!t) throw new Error(`missing ${name}`);
    return t;
  };
  /** y = W x (+ b), W [rows][cols] row-major as GGUF stores [cols, rows]. */
  const matvec = (w: Float32Array, x: Float64Array | Float32Array, rows: number, rowStart = 0, b?: Float32Array, bStart = 0): Float64Array => {
    const cols = x.length;
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = (rowStart + r) * cols;
      for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
      y[r] = s + (b ? b[bStart + r] : 0);
    }
    return y;
  };
  const rmsNorm = (x: Float64Array, w: Float32Array): Float64Array => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const scale = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * scale * w[i]);
  };
  const freqFactors = a === 'llama' ? tensor('rope_freqs.weight') : undefined;
  // YaRN as ggml's rope_yarn (ext_factor 1, beta fast/slow 32/1), with llama.cpp's net cos/sin scale 1 + 0.1 ln(factor).
  const corr = (beta: number) => (nRot * Math.log(nCtxOrig / (beta * 2 * Math.PI))) / (2 * Math.log(base));
  const lo = Math.max(0, Math.floor(corr(32))), hi = Math.min(nRot - 1, Math.ceil(corr(1)));
  const yarn = scalingType === 'yarn';
  const mscale = yarn ? 1 + 0.1 * Math.log(factor) : 1;
  const rope = (x: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < nRot / 2; j++) {
        let extrap = pos * Math.pow(base, (-2 * j) / nRot);
        if (freqFactors) extrap /= freqFactors[j];
        let theta = extrap * freqScale;
        if (yarn) {
          const mix = 1 - Math.min(1, Math.max(0, (j - lo) / Math.max(0.001, hi - lo)));
          theta = theta * (1 - mix) + extrap * mix;
        }
        const [i0, i1] = neox ? [h * hd + j, h * hd + j + nRot / 2] : [h * hd + 2 * j, h * hd + 2 * j + 1];
        const c = Math.cos(theta) * mscale, s = Math.sin(theta) * mscale;
        const x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
      }
    }
  };

  const embd = need('token_embd.weight');
  const nVocab = embd.length / d;
  const out = new Float32Array(tokens.length * nVocab);
  const kCache: Float64Array[][] = Array.from({ length: layers }, () => []);
  const vCache: Float64Array[][] = Array.from({ length: layers }, () => []);
  const kvw = nkv * hd;
  for (let pos = 0; pos < tokens.length; pos++) {
    let x = Float64Array.from(embd.subarray(tokens[pos] * d, (tokens[pos] + 1) * d));
    for (let l = 0; l < layers; l++) {
      const p = `blk.${l}.`;
      const h = rmsNorm(x, need(`${p}attn_norm.weight`));
      let q: Float64Array, k: Float64Array, v: Float64Array;
      const qkv = tensor(`${p}attn_qkv.weight`);
      if (qkv) {
        const b = tensor(`${p}attn_qkv.bias`);
        q = matvec(qkv, h, d, 0, b, 0);
        k = matvec(qkv, h, kvw, d, b, d);
        v = matvec(qkv, h, kvw, d + kvw, b, d + kvw);
      } else {
        q = matvec(need(`${p}attn_q.weight`), h, d, 0, tensor(`${p}attn_q.bias`));
        k = matvec(need(`${p}attn_k.weight`), h, kvw, 0, tensor(`${p}attn_k.bias`));
        v = matvec(need(`${p}attn_v.weight`), h, kvw, 0, tensor(`${p}attn_v.bias`));
      }
      rope(q, nh, pos);
      rope(k, nkv, pos);
      kCache[l].push(k);
      vCache[l].push(v);
      const att = new Float64Array(d);
      const first = config.slidingWindow ? Math.max(0, pos - config.slidingWindow + 1) : 0;
      for (let head = 0; head < nh; head++) {
        const g = Math.floor(head / (nh / nkv));
        const scores: number[] = [];
        for (let j = first; j <= pos; j++) {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[head * hd + i] * kCache[l][j][g * hd + i];
          scores.push(s / Math.sqrt(hd));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((s, v) => s + v, 0);
        for (let j = first; j <= pos; j++) {
          for (let i = 0; i < hd; i++) att[head * hd + i] += (e[j - first] / sum) * vCache[l][j][g * hd + i];
        }
      }
      let attOut = matvec(need(`${p}attn_output.weight`), att, d, 0, tensor(`${p}attn_output.bias`));
      if (a === 'glm4') attOut = rmsNorm(attOut, need(`${p}post_attention_norm.weight`));
      x = x.map((val, i) => val + attOut[i]);
      const h2 = rmsNorm(x, need(`${p}ffn_norm.weight`));
      const up = need(`${p}ffn_up.weight`);
      const gate = glm ? matvec(up, h2, ff, 0) : matvec(need(`${p}ffn_gate.weight`), h2, ff);
      const upv = glm ? matvec(up, h2, ff, ff) : matvec(up, h2, ff);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * upv[i]);
      let ffnOut = matvec(need(`${p}ffn_down.weight`), act, d);
      if (a === 'glm4') ffnOut = rmsNorm(ffnOut, need(`${p}post_ffw_norm.weight`));
      x = x.map((val, i) => val + ffnOut[i]);
    }
    const hidden = rmsNorm(x, need('output_norm.weight'));
    const logits = matvec(tensor('output.weight') ?? embd, hidden, nVocab);
    out.set(logits, pos * nVocab);
  }
  return out;
}
