// Our logits against llama.cpp's (node-llama-cpp 3.22.1, installed on demand into .bench/peer/, never a dependency)
// on files our `quantize` wrote in llama.cpp's types: q4_k_m, q5_k_m and q6_k (plus q4_1, q5_0, q5_1, q4_k = Q4_K_S and
// q5_k = Q5_K_S) of a random llama model (embedding 512, feed-forward 1536, 8 heads over 4 KV heads, 2 layers,
// vocabulary 1024), and q4_k_m, q6_k of the 110M shape with 2 layers (tied output: the token embedding becomes the
// Q6_K output). llama.cpp reads our blocks with its own kernels, so this checks the layouts, the per-tensor types and
// our dot products at once. The same 32-token sequence is evaluated from an empty context in both engines (llama.cpp
// with an F32 KV cache and no flash attention, i.e. attention in F32 as ours) and every position is compared.
// Skips only if the peer cannot be installed or loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { GgmlType, loadModel, quantizeModel } from '../../lib/index.js';
import { writeRandomLlamaModel, type LlamaShape } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import type { LlamaMix } from '../../lib/backends/weight-types.js';
import { peerLogits } from '../../bench/peer.js';
import { openPeerOrSkip } from './peer-harness.js';
import { SHAPE_110M } from '../../bench/models.js';
import { tempDir } from '../helpers/fixtures.js';

const N_TOKENS = 32;

const SHAPES: Record<string, { shape: LlamaShape; types: LlamaMix[] }> = {
  'kquants-2l': {
    shape: { embeddingLength: 512, blockCount: 2, headCount: 8, headCountKv: 4, feedForwardLength: 1536, vocabSize: 1024, contextLength: 256 },
    types: ['q4_k_m', 'q5_k_m', 'q6_k', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k'],
  },
  '110m-2l': { shape: { ...SHAPE_110M, blockCount: 2 }, types: ['q4_k_m', 'q6_k'] },
};

/**
 * Tolerances. Both engines multiply the same weight bytes by activations quantized with the same rule (Q8_K, Q8_1 or
 * Q8_0, llama.cpp's), so each matmul's integer block sums are identical and only the float sums differ in order
 * (~1e-7 relative). Up to the first activation that lands within that ~1e-7 of a rounding boundary, the logits agree
 * to ~2e-7 (measured: every position up to then, and always the first). Such an activation rounds to the neighbouring
 * integer in one engine (a change of 1/127 of the block maximum in one value), and this random model carries the change
 * into its logits as 0.5..2e-2 relative, for that position and, where the value went into the KV cache, the later
 * ones (measured: 2e-2 at most per position, 1.4e-2 overall). So:
 * - the first position: relative RMS difference <= 1e-5 (the kernels agree: a layout, scale or bit error gives ~1);
 * - every position: <= 5e-2; all logits: relative RMS <= 3e-2, max |difference| <= 0.15 x their RMS;
 * - argmax equal wherever the peer's top-2 margin exceeds 10x the max abs difference.
 * (The F16 KV cache and flash attention llama.cpp uses by default would add ~1e-3 everywhere; we turn them off.)
 */
const TOL = { first: 1e-5, position: 5e-2, relRms: 3e-2, relMax: 0.15 };

interface Agreement {
  first: number;
  worstPosition: number;
  exactPositions: number;
  relRms: number;
  relMax: number;
  maxAbs: number;
  argmaxRequired: number;
  argmaxRequiredAgree: number;
}

function compare(ours: Float32Array, peer: Float32Array, nVocab: number): Agreement {
  const rows = ours.length / nVocab;
  let se = 0, sp = 0, maxAbs = 0, worstPosition = 0, first = 0, exactPositions = 0;
  for (let r = 0; r < rows; r++) {
    let e = 0, s = 0;
    for (let i = r * nVocab; i < (r + 1) * nVocab; i++) {
      const d = ours[i] - peer[i];
      e += d * d;
      s += peer[i] * peer[i];
      const a = Math.abs(d);
      if (!(a <= maxAbs)) maxAbs = Number.isNaN(a) ? Infinity : a;
    }
    se += e;
    sp += s;
    const rel = Math.sqrt(e / s);
    if (r === 0) first = rel;
    if (rel <= 1e-5) exactPositions++;
    if (!(rel <= worstPosition)) worstPosition = Number.isNaN(rel) ? Infinity : rel;
  }
  let required = 0, requiredAgree = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * nVocab;
    let a = 0, b = 0, second = -Infinity;
    for (let i = 1; i < nVocab; i++) {
      if (ours[o + i] > ours[o + a]) a = i;
      if (peer[o + i] > peer[o + b]) b = i;
    }
    for (let i = 0; i < nVocab; i++) if (i !== b && peer[o + i] > second) second = peer[o + i];
    if (peer[o + b] - second > 10 * maxAbs) {
      required++;
      if (a === b) requiredAgree++;
    }
  }
  return {
    first,
    worstPosition,
    exactPositions,
    relRms: Math.sqrt(se / sp),
    relMax: maxAbs / Math.sqrt(sp / ours.length),
    maxAbs,
    argmaxRequired: required,
    argmaxRequiredAgree: requiredAgree,
  };
}

test('K-quant and Q4_1/Q5_0/Q5_1 logits agree with llama.cpp (node-llama-cpp 3.22.1)', { timeout: 30 * 60_000 }, async (t) => {
  const llama = await openPeerOrSkip(t);
  if (!llama) return;
  const dir = tempDir(t, 'aglm-peer-kquants-');
  const threads = Math.min(2, availableParallelism());
  for (const [shapeName, { shape, types }] of Object.entries(SHAPES)) {
    const f16 = join(dir, `${shapeName}-f16.gguf`);
    await writeRandomLlamaModel(f16, shape, { type: GgmlType.F16, seed: 11 });
    const tokens = benchTokens(N_TOKENS, shape.vocabSize, 1, 99);
    for (const type of types) {
      await t.test(`${shapeName} ${type}`, async (st) => {
        const path = join(dir, `${shapeName}-${type}.gguf`);
        await quantizeModel(f16, path, type);
        let ours: Float32Array;
        {
          await using model = await loadModel(path);
          await using ctx = model.createContext({ contextSize: 64, threads });
          ours = await ctx.evaluate(tokens, { logits: 'all' });
        }
        const peer = await peerLogits(llama, path, tokens, shape.vocabSize, { threads, kvType: 'F32', flashAttention: false });
        const a = compare(ours, peer, shape.vocabSize);
        st.diagnostic(
          `${shapeName} ${type}: first position ${a.first.toExponential(1)}, ${a.exactPositions}/${N_TOKENS} positions within 1e-5, ` +
            `worst position ${a.worstPosition.toExponential(1)}, relative RMS ${a.relRms.toExponential(2)}, max diff / RMS ` +
            `${a.relMax.toExponential(2)} (max abs ${a.maxAbs.toExponential(2)}), argmax ${a.argmaxRequiredAgree}/${a.argmaxRequired} ` +
            `clear-margin positions`,
        );
        assert.ok(a.first <= TOL.first, `first position: relative RMS ${a.first} > ${TOL.first}`);
        assert.ok(a.worstPosition <= TOL.position, `a position differs by ${a.worstPosition} > ${TOL.position}`);
        assert.ok(a.relRms <= TOL.relRms, `relative RMS ${a.relRms} > ${TOL.relRms}`);
        assert.ok(a.relMax <= TOL.relMax, `max abs diff / RMS ${a.relMax} > ${TOL.relMax}`);
        assert.equal(a.argmaxRequiredAgree, a.argmaxRequired, 'argmax differs at a position with a clear margin');
      });
    }
  }
});
