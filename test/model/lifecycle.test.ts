// Model and Context lifecycle and option errors: dispose cascades, use after dispose, busy contexts, full contexts,
// bad options and token ids: each a typed AglmError, none a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AglmError, CPU_VARIANTS, loadModel, systemInfo } from '../../lib/index.js';

test('model metadata, architecture and vocabulary', async () => {
  await using model = await loadModel();
  assert.equal(model.architecture, 'llama');
  assert.equal(model.vocabSize, 512);
  assert.equal(model.contextLength, 2048);
  assert.equal(model.metadata.getNumber('llama.block_count'), 5);
  assert.equal(model.detokenize(model.tokenize('Once upon a time')), 'Once upon a time');
  assert.deepEqual([...model.tokenize('<s>', { addBos: false, special: true })], [1]);
  assert.notDeepEqual([...model.tokenize('<s>', { addBos: false })], [1]);
});

test('disposing a model ends its contexts; any use after dispose throws DISPOSED', async () => {
  const model = await loadModel();
  const ctx = model.createContext({ contextSize: 32 });
  await ctx.evaluate([1, 403]);
  model.dispose();
  assert.equal(model.disposed, true);
  assert.equal(ctx.disposed, true);
  await assert.rejects(ctx.evaluate([407]), { code: 'DISPOSED' });
  assert.throws(() => model.tokenize('x'), { code: 'DISPOSED' });
  assert.throws(() => model.createContext(), { code: 'DISPOSED' });
  assert.throws(() => model.generate('x'), { code: 'DISPOSED' });
  model.dispose(); // idempotent
});

test('await using disposes at the end of the block', async () => {
  let escaped;
  {
    await using model = await loadModel();
    escaped = model;
  }
  assert.equal(escaped.disposed, true);
});

test('disposing a context while it evaluates rejects that call with DISPOSED', async () => {
  await using model = await loadModel();
  const ctx = model.createContext({ contextSize: 2048, threads: 1 });
  const pending = ctx.evaluate(Array.from({ length: 2000 }, (_, i) => 3 + (i % 500)));
  ctx.dispose();
  await assert.rejects(pending, { code: 'DISPOSED' });
});

test('a second evaluate while one runs fails fast with BUSY', async () => {
  await using model = await loadModel();
  await using ctx = model.createContext({ contextSize: 2048 });
  const first = ctx.evaluate(Array.from({ length: 1000 }, (_, i) => 3 + (i % 500)));
  await assert.rejects(ctx.evaluate([1]), { code: 'BUSY' });
  await first;
  assert.equal(ctx.position, 1000);
});

test('tokens past the context size give CONTEXT_FULL and keep the context usable', async () => {
  await using model = await loadModel();
  await using ctx = model.createContext({ contextSize: 16 });
  await ctx.evaluate(Array.from({ length: 10 }, () => 300));
  await assert.rejects(ctx.evaluate(Array.from({ length: 7 }, () => 300)), { code: 'CONTEXT_FULL' });
  assert.equal(ctx.position, 10);
  await ctx.evaluate(Array.from({ length: 6 }, () => 300));
  assert.equal(ctx.position, 16);
  const r = await model.complete('Once upon a time', { maxTokens: 100, context: model.createContext({ contextSize: 12 }) });
  assert.equal(r.stopReason, 'contextFull');
  // 5 prompt positions + 7 generated fill the 12; the 8th token is sampled from the last position's logits.
  assert.equal(r.tokens.length, 12 - 5 + 1);
  await assert.rejects(model.complete('Once upon a time there was a dog and a cat', { context: model.createContext({ contextSize: 4 }) }), { code: 'CONTEXT_FULL' });
});

test('wrong options and token ids are INVALID_ARGUMENT errors in one sentence shape', async () => {
  await using model = await loadModel();
  const bad: [() => unknown, RegExp][] = [
    [() => model.createContext({ contextSize: 0 }), /Expected an integer from 1 to \d+ for contextSize but received 0 of type number/],
    [() => model.createContext({ threads: 1.5 }), /for threads/],
    [() => model.createContext('big' as never), /for context options/],
    [() => model.tokenize(42 as never), /Expected a string for text but received 42 of type number/],
    [() => model.generate('x', { temperature: -1 }), /temperature/],
    [() => model.generate('x', { maxTokens: -1 }), /maxTokens/],
    [() => model.generate('x', { stop: 3 as never }), /stop/],
    [() => model.generate('x', { signal: 'no' as never }), /AbortSignal for signal/],
  ];
  for (const [fn, message] of bad) {
    assert.throws(fn, (e: unknown) => e instanceof AglmError && e.code === 'INVALID_ARGUMENT' && message.test(e.message));
  }
  await using ctx = model.createContext({ contextSize: 8 });
  await assert.rejects(ctx.evaluate([1, 512]), { code: 'INVALID_ARGUMENT', message: /tokens\[1\]/ });
  await assert.rejects(ctx.evaluate([]), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(ctx.evaluate([1], { logits: 'some' as never }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(loadModel(undefined, { cpuVariant: 'sse2' as never }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(loadModel('/nonexistent/model.gguf'), { code: 'FILE_NOT_FOUND' });
});

test('forcing a CPU variant the machine or build lacks is BACKEND_UNAVAILABLE', async () => {
  // Every machine lacks one: x86-64 builds have no NEON kernels, ARM64 builds no AVX ones.
  const runnable = new Set(systemInfo().cpuVariants.filter((v) => v.available).map((v) => v.name));
  const missing = CPU_VARIANTS.find((v) => !runnable.has(v))!;
  await assert.rejects(loadModel(undefined, { cpuVariant: missing }), {
    code: 'BACKEND_UNAVAILABLE',
    message: new RegExp(missing),
  });
});

test('systemInfo names the CPU features, the variants and the choice with its reason', () => {
  const info = systemInfo();
  assert.ok(info.cpuVariants.some((v) => v.name === 'ref' && v.available));
  assert.ok(info.backends.some((b) => b.name === 'cpu' && b.available));
  assert.equal(info.chosen.backend, 'cpu');
  assert.ok(info.chosen.cpuVariant);
  const best = info.cpuVariants.filter((v) => v.available).sort((a, b) => b.score - a.score)[0];
  assert.equal(info.chosen.cpuVariant, best.name);
  assert.match(info.chosen.reason, new RegExp(best.name));
  if (process.arch === 'x64') assert.ok(info.cpu.features.includes('avx2') === info.cpuVariants.find((v) => v.name === 'avx2')!.available);
});
