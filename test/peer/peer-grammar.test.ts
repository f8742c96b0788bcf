// Greedy generation under a GBNF grammar against llama.cpp's grammar sampler (node-llama-cpp 3.22.1's
// LlamaCompletion with llama.createGrammar, installed on demand into .bench/peer/): the same random-weight F32 llama
// file, the same prompt tokens, the same GBNF text; the generated tokens must be equal. A divergence is accepted only
// at a near tie: where the two engines' picks are within 1e-4 (relative to the logits' RMS) in our logits, which F32
// summation order alone can flip. Skips only if the peer cannot be installed or loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { GgmlType, jsonSchemaToGbnf, loadModel } from '../../lib/index.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { peerGrammarGreedy } from '../../bench/peer.js';
import { SHAPE_110M } from '../../bench/models.js';
import { tempDir } from '../helpers/fixtures.js';
import { GBNF_SUITE } from '../grammar/suite.js';
import { SCHEMAS } from '../grammar/schemas.js';
import { openPeerOrSkip } from './peer-harness.js';

const TIE = 1e-4;

test('greedy outputs under the same GBNF equal llama.cpp\'s (node-llama-cpp 3.22.1) on a random-weight F32 model', { timeout: 20 * 60_000 }, async (t) => {
  const llama = await openPeerOrSkip(t);
  if (!llama) return;
  const dir = tempDir(t, 'aglm-peer-grammar-');
  const path = join(dir, 'random-f32.gguf');
  const shape = { ...SHAPE_110M, blockCount: 2, vocabSize: 4096 };
  await writeRandomLlamaModel(path, shape, { type: GgmlType.F32, seed: 5 });
  const threads = Math.min(2, availableParallelism());
  await using model = await loadModel(path);
  const grammars: Record<string, string> = {};
  for (const [name, c] of Object.entries(GBNF_SUITE)) grammars[name] = c.gbnf;
  for (const name of ['person', 'shapes', 'tree', 'phone-action', 'number-bounds']) grammars[`schema ${name}`] = jsonSchemaToGbnf(SCHEMAS[name]);
  let equal = 0;
  let ties = 0;
  let compared = 0;
  for (const [name, gbnf] of Object.entries(grammars)) {
    for (const promptSeed of [1, 2]) {
      const prompt = [1, ...Array.from({ length: 6 }, (_, i) => 259 + ((promptSeed * 977 + i * 131) % (shape.vocabSize - 259)))];
      const maxTokens = 48;
      const peer = await peerGrammarGreedy(llama, path, prompt, gbnf, maxTokens, { threads });
      const ours = await model.complete(prompt, { grammar: gbnf, temperature: 0, maxTokens });
      const a = ours.tokens, b = peer.tokens;
      compared += Math.min(a.length, b.length);
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      if (i === a.length && i === b.length) {
        equal++;
        continue;
      }
      assert.ok(i < a.length && i < b.length, `${name} prompt ${promptSeed}: one output is a prefix of the other: ours ${a.length} tokens (${ours.stopReason}), peer ${b.length} (${peer.stopReason})`);
      // A divergence: only a near tie in our logits excuses it.
      await using ctx = model.createContext({ contextSize: 256 });
      const logits = await ctx.evaluate([...prompt, ...a.slice(0, i)], { logits: 'last' });
      let ss = 0;
      for (const v of logits) ss += v * v;
      const rms = Math.sqrt(ss / logits.length);
      const gap = Math.abs(logits[a[i]] - logits[b[i]]) / rms;
      t.diagnostic(`${name} prompt ${promptSeed}: diverges at token ${i} (ours ${a[i]}, peer ${b[i]}), gap ${gap.toExponential(2)} of the logits' RMS`);
      assert.ok(gap < TIE, `${name} prompt ${promptSeed}: ours ${JSON.stringify(model.detokenize(a))} vs peer ${JSON.stringify(model.detokenize(b))}, diverging at ${i} with a clear gap ${gap}`);
      ties++;
    }
  }
  t.diagnostic(`${equal} of ${equal + ties} runs token for token equal (${compared} tokens), ${ties} diverged at a near tie`);
  assert.ok(equal >= (equal + ties) * 0.8);
});
