// The JS thread stays free while the model computes (a 5 ms timer keeps firing during generation), and aborting an
// AbortSignal stops prompt processing promptly, rejecting with an ABORTED error, with the context left as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AglmError, loadModel } from '../../lib/index.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { tempDir } from '../helpers/fixtures.js';

test('a 5 ms timer keeps firing while 256 tokens are generated (max lag < 20 ms)', async (t) => {
  await using model = await loadModel();
  let last = performance.now();
  let maxLag = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 5);
    last = now;
    ticks++;
  }, 5);
  let tokens = 0;
  const t0 = performance.now();
  try {
    for await (const chunk of model.generate('Once upon a time', { maxTokens: 256, temperature: 0.8, seed: 7 })) {
      if (chunk.token >= 0) tokens++;
    }
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - t0;
  assert.ok(tokens > 0);
  t.diagnostic(`max timer lag ${maxLag.toFixed(2)} ms over ${ticks} ticks; ${tokens} tokens in ${elapsed.toFixed(0)} ms`);
  assert.ok(maxLag < 20, `max timer lag ${maxLag.toFixed(1)} ms over ${ticks} ticks in ${elapsed.toFixed(0)} ms`);
});

test('aborting during a 2,000-token prompt rejects with ABORTED within 100 ms', async (t) => {
  // A random-weight model large enough that 2,000 tokens take well over a second on this CPU.
  const path = join(tempDir(t), 'abort-model.gguf');
  await writeRandomLlamaModel(path, {
    embeddingLength: 512, blockCount: 6, headCount: 8, headCountKv: 4, feedForwardLength: 1376, vocabSize: 512, contextLength: 2048,
  });
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 2048 });
  const prompt = Array.from({ length: 2000 }, (_, i) => 3 + ((i * 7919) % 500));
  const controller = new AbortController();
  const started = performance.now();
  const pending = ctx.evaluate(prompt, { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 150));
  const abortedAt = performance.now();
  controller.abort(new Error('user pressed stop'));
  const err = await pending.then(
    () => assert.fail(`the evaluation finished before the abort (${(performance.now() - started).toFixed(0)} ms): make the test model larger`),
    (e: unknown) => e,
  );
  const latency = performance.now() - abortedAt;
  assert.ok(err instanceof AglmError, String(err));
  assert.equal(err.code, 'ABORTED');
  assert.equal((err.cause as Error).message, 'user pressed stop');
  assert.ok(latency < 100, `rejected ${latency.toFixed(1)} ms after the abort`);
  t.diagnostic(`abort latency ${latency.toFixed(1)} ms`);
  // All or nothing: the context holds what it held before the call, and works.
  assert.equal(ctx.position, 0);
  const logits = await ctx.evaluate(prompt.slice(0, 8));
  assert.equal(logits.length, 512);
  assert.equal(ctx.position, 8);
});

test('an already-aborted signal rejects before any work, and generate() stops when aborted', async () => {
  await using model = await loadModel();
  await using ctx = model.createContext({ contextSize: 64 });
  await assert.rejects(ctx.evaluate([1, 2, 3], { signal: AbortSignal.abort() }), { code: 'ABORTED' });
  assert.equal(ctx.position, 0);
  const controller = new AbortController();
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of model.generate('Once upon a time', { maxTokens: 200, signal: controller.signal })) {
        if (++n === 5) controller.abort();
      }
    })(),
    { code: 'ABORTED' },
  );
  assert.equal(n, 5);
});
