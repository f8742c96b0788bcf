// Our logits against llama.cpp's (node-llama-cpp 3.22.1, installed on demand into .bench/peer/, never a dependency)
// on random-weight llama files written by our own writer: the 110M shape and the TinyLlama shape (2 layers each, to
// stay cheap), in F32, F16, Q8_0 and Q4_0. The same 32-token sequence is evaluated from an empty context in both
// engines and every position's logits are compared. Skips only if the peer cannot be installed or loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType } from '../../lib/index.js';
import { TINYLLAMA_SHAPE, writeRandomLlamaModel, type LlamaShape } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { peerLogits } from '../../bench/peer.js';
import { openPeerOrSkip } from './peer-harness.js';
import { compareLogits as compare, ourLogits, type Agreement } from './agreement.js';
import { SHAPE_110M } from '../../bench/models.js';
import { tempDir } from '../helpers/fixtures.js';

const N_TOKENS = 32;

// Two llama.cpp configurations are compared with ours:
// - matched: llama.cpp with an F32 KV cache and without flash attention, so its attention runs in F32 as ours does
//   and only the weight types' numerics differ. Tolerances apply to this one.
// - default: node-llama-cpp's defaults (F16 KV cache, flash attention 'auto' = on for the CPU, which rounds K and V
//   to F16 whatever the cache type): ~1e-3 relative from that alone. Reported, with only a loose sanity bound.
// Tolerances on the relative RMS difference of all logits (sqrt(sum (ours - peer)^2 / sum peer^2)) and on the
// largest difference over the RMS of the peer's logits, per weight type, for the matched configuration:
// - F32: the same F32 arithmetic in another summation order: ~1e-7 relative.
// - F16: llama.cpp converts the activations to F16 before every F16 matmul (2^-11 relative rounding); we keep
//   them in F32: ~1e-3.
// - Q8_0, Q4_0: both quantize the activations to Q8_0 blocks the same way, and one quantized matmul on identical
//   inputs agrees to ~1e-7. But the quantization is discontinuous: a last-bit difference from summation order
//   (attention, norms) flips an activation to the neighbouring step (1/127 of its block's maximum) now and then,
//   and every later matmul amplifies such flips, so after a few layers two correct implementations differ by a
//   good fraction of the Q8_0 step (ours on the ref and avx512 kernels differ from each other just as much): ~1e-2.
// Argmax agreement: the random models' top logits are often close, so a position may legitimately flip between two
// near-equal candidates; it is required wherever the peer's top-2 margin exceeds 10x the max abs difference.
const TOLERANCE: Record<string, { relRms: number; relMax: number }> = {
  F32: { relRms: 1e-5, relMax: 1e-4 },
  F16: { relRms: 5e-3, relMax: 3e-2 },
  Q8_0: { relRms: 4e-2, relMax: 0.2 },
  Q4_0: { relRms: 4e-2, relMax: 0.2 },
};
// The first position is one token evaluated alone (attention over itself, nothing to reorder): without activation
// quantization it must agree as closely as the per-type bound says. With Q8_0 activations it usually agrees to ~1e-7
// too, but one unlucky flip in the first layer (~5e-4) grows to ~1e-2 by the second (seen with some seeds), so it
// is only reported for those types.
const FIRST_POSITION_REL_RMS: Record<string, number | undefined> = { F32: 1e-5, F16: 5e-3 };
/** Bound on the relative RMS difference from llama.cpp in its default configuration (a sanity check only). */
const DEFAULT_CONFIG_REL_RMS = 6e-2;

const TYPES = { F32: GgmlType.F32, F16: GgmlType.F16, Q8_0: GgmlType.Q8_0, Q4_0: GgmlType.Q4_0 } as const;
const SHAPES: Record<string, LlamaShape> = {
  '110m-2l': { ...SHAPE_110M, blockCount: 2 },
  'tinyllama-2l': { ...TINYLLAMA_SHAPE, blockCount: 2 },
};

test('logits agree with llama.cpp (node-llama-cpp 3.22.1)', { timeout: 30 * 60_000 }, async (t) => {
  const llama = await openPeerOrSkip(t);
  if (!llama) return;
  const dir = tempDir(t, 'aglm-peer-');
  const threads = Math.min(2, availableParallelism());
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    for (const [typeName, type] of Object.entries(TYPES)) {
      await t.test(`${shapeName} ${typeName}`, async (st) => {
        const path = join(dir, `${shapeName}-${typeName}.gguf`);
        await writeRandomLlamaModel(path, shape, { type, seed: 11 });
        try {
          const tokens = benchTokens(N_TOKENS, shape.vocabSize, 1, 99);
          const ours = await ourLogits(path, tokens, threads);
          const matched = compare(ours, await peerLogits(llama, path, tokens, shape.vocabSize, { threads, kvType: 'F32', flashAttention: false }), shape.vocabSize);
          const dflt = compare(ours, await peerLogits(llama, path, tokens, shape.vocabSize, { threads }), shape.vocabSize);
          const line = (a: Agreement) =>
            `max abs diff ${a.maxAbs.toExponential(2)}, relative RMS ${a.relRms.toExponential(2)} (first position ${a.firstRelRms.toExponential(2)}), max diff / RMS ${a.relMax.toExponential(2)}, ` +
            `argmax agreement ${(a.argmaxAgree * 100).toFixed(1)}% (${a.argmaxRequiredAgree}/${a.argmaxRequired} clear-margin positions)`;
          st.diagnostic(`${shapeName} ${typeName} vs llama.cpp matched (F32 KV, no flash attention): ${line(matched)}`);
          st.diagnostic(`${shapeName} ${typeName} vs llama.cpp default (F16 KV, flash attention auto): ${line(dflt)}`);
          const tol = TOLERANCE[typeName];
          assert.ok(matched.relRms <= tol.relRms, `relative RMS ${matched.relRms} > ${tol.relRms}`);
          assert.ok(matched.relMax <= tol.relMax, `max abs diff / RMS ${matched.relMax} > ${tol.relMax}`);
          const firstTol = FIRST_POSITION_REL_RMS[typeName];
          if (firstTol !== undefined) assert.ok(matched.firstRelRms <= firstTol, `first position: relative RMS ${matched.firstRelRms} > ${firstTol}`);
          assert.equal(matched.argmaxRequiredAgree, matched.argmaxRequired, 'argmax differs at a position with a clear margin');
          assert.ok(dflt.relRms <= DEFAULT_CONFIG_REL_RMS, `relative RMS against the default configuration ${dflt.relRms} > ${DEFAULT_CONFIG_REL_RMS}`);
        } finally {
          rmSync(path, { force: true });
        }
      });
    }
  }
});
