// The precision planner: with room, a model loads as stored; with a memory budget below its F16 size, 'auto'
// quantizes at load to the most precise type that fits and says so in model.plan; quantizing at load computes
// exactly what a file quantized by `quantize` computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GgmlType, loadModel, quantizeModel, readGguf } from '../../lib/index.js';
import { planModel } from '../../lib/backends/planner.js';
import { buildArchitecture } from '../../lib/arch/index.js';
import { fromNative, nativeBinding } from '../../lib/native.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { maxAbsDiff, tempDir } from '../helpers/fixtures.js';

const SHAPE = { embeddingLength: 1024, blockCount: 4, headCount: 16, headCountKv: 4, feedForwardLength: 2816, vocabSize: 32000, contextLength: 2048 };
const MIB = 1024 ** 2;

test('auto precision under a budget below the F16 size quantizes at load and says so', async (t) => {
  const dir = tempDir(t);
  const f16 = join(dir, 'f16.gguf');
  await writeRandomLlamaModel(f16, SHAPE, { type: GgmlType.F16, seed: 3 });
  const f16Bytes = (await readGguf(f16)).tensors.reduce((n, x) => n + x.byteLength, 0);

  await using roomy = await loadModel(f16);
  assert.equal(roomy.plan.precision, 'f16');
  assert.equal(roomy.plan.quantizeOnLoad, false);

  const budget = Math.floor(f16Bytes * 0.9);
  await using tight = await loadModel(f16, { memoryBudget: budget });
  t.diagnostic(`F16 weights ${(f16Bytes / MIB).toFixed(1)} MiB, budget ${(budget / MIB).toFixed(1)} MiB: ${tight.plan.reasons.join('; ')}`);
  assert.equal(tight.plan.quantizeOnLoad, true);
  assert.ok(tight.plan.precision === 'q8_0' || tight.plan.precision === 'q4_0', tight.plan.precision);
  assert.ok(tight.plan.weightBytes < f16Bytes * 0.6);
  assert.ok(tight.plan.conversions.some((c) => c.name === 'blk.0.ffn_up.weight' && c.from === 'F16'));
  assert.match(tight.plan.reasons.join('\n'), /f16 weights .* would exceed the budget/);
  assert.match(tight.plan.reasons.join('\n'), /converted at load/);
  assert.ok(tight.plan.contextSize >= 256);

  // The same conversion as a file written by `quantize`: identical logits.
  const q = join(dir, `${tight.plan.precision}.gguf`);
  await quantizeModel(f16, q, tight.plan.precision as 'q8_0' | 'q4_0');
  await using fromFile = await loadModel(q);
  assert.equal(fromFile.plan.quantizeOnLoad, false);
  const tokens = [1, 300, 301, 302, 303, 304, 305, 306];
  await using a = tight.createContext({ contextSize: 16 });
  await using b = fromFile.createContext({ contextSize: 16 });
  const la = await a.evaluate(tokens, { logits: 'all' });
  const lb = await b.evaluate(tokens, { logits: 'all' });
  assert.equal(maxAbsDiff(la, lb), 0);
  const r = await tight.complete('abc', { maxTokens: 8, temperature: 0 });
  assert.equal(r.tokens.length, 8);
});

test('planModel steps down f32 -> f16 -> q8_0 -> q4_0 as the budget shrinks, and refuses what cannot fit', async (t) => {
  const dir = tempDir(t);
  const f32 = join(dir, 'f32.gguf');
  await writeRandomLlamaModel(f32, { ...SHAPE, blockCount: 2 }, { type: GgmlType.F32, seed: 4 });
  const file = await readGguf(f32);
  const plan = (memoryBudget: number, precision: 'auto' | 'f16' = 'auto') => {
    const build = buildArchitecture(file);
    return planModel({
      file,
      graph: build.graph,
      trainContext: 2048,
      precision,
      memoryBudget,
      budgetSource: 'test',
      kvBytesPerToken: build.graph.cache.reduce((n, c) => n + (c.k + c.v) * 4, 0),
    });
  };
  // Sweep the budget down from 2x the F32 weights: the precision only ever steps down, through every level.
  const weights = file.tensors.reduce((n, x) => n + x.byteLength, 0);
  const order = ['f32', 'f16', 'q8_0', 'q4_0'];
  const seen: string[] = [];
  let last;
  for (let budget = 2 * weights; budget > 8 * MIB; budget = Math.floor(budget * 0.93)) {
    try {
      last = plan(budget);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'OUT_OF_MEMORY');
      break;
    }
    if (seen[seen.length - 1] !== last.precision) seen.push(last.precision);
  }
  t.diagnostic(seen.join(' > '));
  assert.deepEqual(seen, order);
  assert.throws(() => plan(8 * MIB), { code: 'OUT_OF_MEMORY', message: /memoryBudget/ });
  assert.equal(plan(8 * MIB * 1024, 'f16').precision, 'f16');
  // Near the smallest budget that still loads, the context was cut to fit rather than the load refused.
  assert.ok(last!.contextSize < 2048, `context ${last!.contextSize}`);
  assert.match(last!.reasons.join('\n'), /context reduced/);
});

test('Model.load takes the load-time thread count from the caller (cgroup-aware); bad counts are typed errors', async () => {
  for (const threads of [0, -1, 1.5e6, 'two']) {
    let code = '';
    try {
      await nativeBinding().Model.load({ path: 'unused.gguf', threads: threads as number, graph: {} as never });
    } catch (e) {
      code = fromNative(e).code;
    }
    assert.equal(code, 'INVALID_ARGUMENT', `threads ${threads}`);
  }
});
