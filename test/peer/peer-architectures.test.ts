// Our logits against llama.cpp's (node-llama-cpp 3.22.1, installed on demand into .bench/peer/) for every
// architecture besides plain llama: random-weight files in llama.cpp's layout written by our writer
// (lib/tools/random-model.ts) for chatglm (fused attn_qkv + bias, fused gate/up, rope on half of each head), glm4
// (separate q/k/v + biases as its converter writes them, post-attention / post-FFN norms), qwen2 (q/k/v biases, NEOX
// rope) and llama with Llama 3 frequency factors (rope_freqs.weight), in F32 and Q8_0; plus F32 variants of the
// layouts llama.cpp also accepts (chatglm with separate q/k/v, glm4 with a fused attn_qkv) and of rope scaling
// (llama linear, qwen2 YaRN). 32 tokens from an empty context, every position's logits compared.
// Skips only if the peer cannot be installed or loaded; a file the peer rejects fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType } from '../../lib/index.js';
import { writeRandomModel, type LlamaShape, type RandomArchOptions } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { peerLogits } from '../../bench/peer.js';
import { openPeerOrSkip } from './peer-harness.js';
import { compareLogits, ourLogits, type Agreement } from './agreement.js';
import { tempDir } from '../helpers/fixtures.js';

const N_TOKENS = 32;
// head dim 32 (chatglm/glm4 rotate 16 of it), grouped KV (2 query heads per KV head), rows of whole Q8_0 blocks.
const SHAPE: LlamaShape = { embeddingLength: 128, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 256, vocabSize: 320, contextLength: 512 };

// Tolerances on the relative RMS difference of all logits and on the max difference over the peer's RMS, against
// llama.cpp with an F32 KV cache and no flash attention (the same reasoning as test/peer/peer-logits.test.ts):
// - F32: the same arithmetic in another summation order, ~1e-7 measured.
// - Q8_0: both quantize activations to Q8_0 the same way (~1e-7 measured on these 2-layer models), but a last-bit
//   difference can flip an activation to the neighbouring Q8_0 step (1/127 of its block's maximum), which later
//   layers amplify: one such flip moves logits by ~1e-3 relative here, so the bound leaves room for a few.
const TOLERANCE = {
  F32: { relRms: 1e-5, relMax: 1e-4 },
  Q8_0: { relRms: 1e-2, relMax: 5e-2 },
} as const;

const CASES: { name: string; options: RandomArchOptions; types: (keyof typeof TOLERANCE)[] }[] = [
  { name: 'chatglm', options: { arch: 'chatglm' }, types: ['F32', 'Q8_0'] },
  { name: 'glm4', options: { arch: 'glm4' }, types: ['F32', 'Q8_0'] },
  { name: 'qwen2', options: { arch: 'qwen2' }, types: ['F32', 'Q8_0'] },
  { name: 'llama3 (rope_freqs)', options: { arch: 'llama', ropeFreqs: true }, types: ['F32', 'Q8_0'] },
  { name: 'chatglm separate q/k/v', options: { arch: 'chatglm', qkv: 'separate' }, types: ['F32'] },
  { name: 'glm4 fused attn_qkv', options: { arch: 'glm4', qkv: 'fused' }, types: ['F32'] },
  { name: 'llama linear rope scaling', options: { arch: 'llama', ropeScaling: { type: 'linear', factor: 4 } }, types: ['F32'] },
  { name: 'qwen2 YaRN', options: { arch: 'qwen2', ropeScaling: { type: 'yarn', factor: 4, originalContextLength: 16 } }, types: ['F32'] },
];

const TYPES = { F32: GgmlType.F32, Q8_0: GgmlType.Q8_0 } as const;

test('architectures agree with llama.cpp (node-llama-cpp 3.22.1)', { timeout: 30 * 60_000 }, async (t) => {
  const llama = await openPeerOrSkip(t);
  if (!llama) return;
  const dir = tempDir(t, 'aglm-peer-arch-');
  const threads = Math.min(2, availableParallelism());
  const tokens = benchTokens(N_TOKENS, SHAPE.vocabSize, 1, 7);
  for (const c of CASES) {
    for (const typeName of c.types) {
      await t.test(`${c.name} ${typeName}`, async (st) => {
        const path = join(dir, `${c.name.replace(/\W+/g, '-')}-${typeName}.gguf`);
        await writeRandomModel(path, SHAPE, { ...c.options, type: TYPES[typeName], seed: 5 });
        try {
          const ours = await ourLogits(path, tokens, threads);
          const peer = await peerLogits(llama, path, tokens, SHAPE.vocabSize, { threads, kvType: 'F32', flashAttention: false });
          const a: Agreement = compareLogits(ours, peer, SHAPE.vocabSize);
          st.diagnostic(
            `${c.name} ${typeName}: max abs diff ${a.maxAbs.toExponential(2)}, relative RMS ${a.relRms.toExponential(2)}, ` +
              `max diff / RMS ${a.relMax.toExponential(2)}, argmax ${(a.argmaxAgree * 100).toFixed(1)}% (${a.argmaxRequiredAgree}/${a.argmaxRequired} clear-margin positions)`,
          );
          const tol = TOLERANCE[typeName];
          assert.ok(a.relRms <= tol.relRms, `relative RMS ${a.relRms} > ${tol.relRms}`);
          assert.ok(a.relMax <= tol.relMax, `max abs diff / RMS ${a.relMax} > ${tol.relMax}`);
          assert.equal(a.argmaxRequiredAgree, a.argmaxRequired, 'argmax differs at a position with a clear margin');
        } finally {
          rmSync(path, { force: true });
        }
      });
    }
  }
});
