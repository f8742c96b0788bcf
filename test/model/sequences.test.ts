// Many sequences in one KV cell pool: batched generation gives each sequence exactly what it gives alone; a step that
// mixes a prompt chunk with decode tokens gives each sequence its own logits; fork() shares a prefix without evaluating
// it again; cells are freed with their sequences; a sequence may grow past contextSize / sequences; a full pool fails
// only the sequence that needs a cell; aborting or disposing one sequence leaves the others undisturbed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AglmError, loadModel, type Model, type Sequence } from '../../lib/index.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { defaultModelPath, maxAbsDiff, runnableVariants, tempDir } from '../helpers/fixtures.js';

const STORIES_PROMPTS = [
  'Once upon a time',
  'The little dog',
  'Lily wanted to',
  'One day, a big',
  'Tom and Sue went to the park',
  'There was a girl who liked',
  'The sun was',
  'A cat sat',
];

/** A random-weight F32 llama-shape model (grouped-query attention, 2 layers), written once per test file. */
let randomPath: string | undefined;
const fileDir = mkdtempSync(join(tmpdir(), 'aglm-seq-'));
after(() => rmSync(fileDir, { recursive: true, force: true }));
async function randomModel(_t?: unknown): Promise<string> {
  if (randomPath) return randomPath;
  randomPath = join(fileDir, 'random-f32.gguf');
  await writeRandomLlamaModel(
    randomPath,
    { embeddingLength: 256, blockCount: 2, headCount: 8, headCountKv: 2, feedForwardLength: 512, vocabSize: 600, contextLength: 1024 },
    { seed: 21 },
  );
  return randomPath;
}

function randomPrompts(model: Model, n: number): number[][] {
  return Array.from({ length: n }, (_, s) => [1, ...Array.from({ length: 3 + s * 2 }, (_, i) => 3 + ((s * 131 + i * 37) % (model.vocabSize - 3)))]);
}

async function batchedEqualsAlone(model: Model, prompts: (string | number[])[], label: string): Promise<void> {
  const opts = { maxTokens: 64, temperature: 0 };
  const alone: Awaited<ReturnType<Model['complete']>>[] = [];
  for (const p of prompts) alone.push(await model.complete(p, opts));
  await using ctx = model.createContext({ contextSize: prompts.length * 96, sequences: prompts.length });
  const seqs = prompts.map(() => ctx.createSequence());
  const stepsBefore = ctx.steps;
  const batched = await Promise.all(seqs.map((s, i) => s.complete(prompts[i], opts)));
  for (let i = 0; i < prompts.length; i++) {
    assert.deepEqual(batched[i].tokens, alone[i].tokens, `${label}: sequence ${i} (${JSON.stringify(prompts[i]).slice(0, 40)})`);
    assert.equal(batched[i].text, alone[i].text);
  }
  // Together, not one after the other: the longest generation's steps (64 tokens + its prompt), plus a few.
  const steps = ctx.steps - stepsBefore;
  assert.ok(steps <= 70, `${label}: ${steps} steps for ${prompts.length} sequences of 64 tokens`);
  assert.ok(alone.some((r) => r.tokens.length === 64), `${label}: some generation ran its full 64 tokens`);
}

test('8 sequences generating at once give each exactly its tokens alone (stories260K, every variant)', async () => {
  for (const variant of runnableVariants()) {
    await using model = await loadModel(defaultModelPath, { cpuVariant: variant });
    await batchedEqualsAlone(model, STORIES_PROMPTS, `stories260K ${variant}`);
  }
});

test('8 sequences generating at once give each exactly its tokens alone (random F32 llama shape, every variant)', async (t) => {
  const path = await randomModel(t);
  for (const variant of runnableVariants()) {
    await using model = await loadModel(path, { cpuVariant: variant });
    await batchedEqualsAlone(model, randomPrompts(model, 8), `random ${variant}`);
  }
});

test("a step mixing one sequence's prompt chunk with others' decode tokens: each within 1e-5 of the sequence alone (F32)", async (t) => {
  const path = await randomModel(t);
  for (const variant of runnableVariants()) {
    await using model = await loadModel(path, { cpuVariant: variant });
    const histories = randomPrompts(model, 6);
    const chunk = Array.from({ length: 23 }, (_, i) => 5 + ((i * 53) % 500));
    const nextTokens = histories.map((h, i) => 7 + i * 11);
    // Alone: each sequence's history, then its next input, in a context of its own.
    const expected: Float32Array[] = [];
    for (let i = 0; i < histories.length; i++) {
      await using c = model.createContext({ contextSize: 128 });
      await c.evaluate(histories[i], { logits: 'none' });
      expected.push(await c.evaluate(i === 0 ? chunk : [nextTokens[i]], { logits: 'all' }));
    }
    // Together: the histories first, then one step with sequence 0's 23-token chunk and the others' decode tokens.
    await using ctx = model.createContext({ contextSize: 512, sequences: histories.length, batchSize: 64 });
    const seqs = histories.map(() => ctx.createSequence());
    await Promise.all(seqs.map((s, i) => s.evaluate(histories[i], { logits: 'none' })));
    const before = ctx.steps;
    const got = await Promise.all(seqs.map((s, i) => s.evaluate(i === 0 ? chunk : [nextTokens[i]], { logits: 'all' })));
    assert.equal(ctx.steps - before, 1, `${variant}: the chunk and the decode tokens went into one step`);
    for (let i = 0; i < seqs.length; i++) {
      const d = maxAbsDiff(got[i], expected[i]);
      assert.ok(d <= 1e-5, `${variant} sequence ${i}: max |diff| ${d}`);
    }
  }
});

test('fork() after a 200-token prefix evaluates none of it again and continues as a fresh sequence would', async (t) => {
  const path = await randomModel(t);
  await using model = await loadModel(path);
  const prefix = Array.from({ length: 200 }, (_, i) => 3 + ((i * 97) % 590));
  await using ctx = model.createContext({ contextSize: 512, sequences: 3 });
  const a = ctx.createSequence();
  await a.evaluate(prefix, { logits: 'none' });
  assert.equal(ctx.cellsUsed, 200);
  const steps = ctx.steps;
  const b = a.fork();
  assert.equal(b.position, 200);
  assert.equal(ctx.cellsUsed, 200, 'the fork shares the prefix cells');
  const forked = await b.complete([42], { maxTokens: 24, temperature: 0 });
  assert.equal(ctx.steps - steps, 24, 'one step per generated token: the prefix was not evaluated again');
  assert.equal(ctx.cellsUsed, 200 + 24, 'new cells only for the new tokens');
  const fresh = await model.complete([...prefix, 42], { maxTokens: 24, temperature: 0 });
  assert.deepEqual(forked.tokens, fresh.tokens);
  // The source continues on its own, unaffected by the fork's tokens.
  const fromA = await a.complete([42], { maxTokens: 24, temperature: 0 });
  assert.deepEqual(fromA.tokens, fresh.tokens);
  assert.equal(ctx.cellsUsed, 200 + 24 + 24);
  // Freeing returns cells: the fork's own cells at once, the shared prefix when its last holder goes.
  b.dispose();
  assert.equal(ctx.cellsUsed, 200 + 24);
  const c = a.fork();
  a.dispose();
  assert.equal(ctx.cellsUsed, 224, 'the prefix and a\'s tokens stay with the fork c');
  c.truncate(100);
  assert.equal(ctx.cellsUsed, 100);
  c.dispose();
  assert.equal(ctx.cellsUsed, 0);
  assert.equal(ctx.activeSequences, 0);
});

test('a sequence grows past contextSize / sequences while cells are free; a full pool fails only the sequence needing a cell', async (t) => {
  const path = await randomModel(t);
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 64, sequences: 4 });
  const [a, b, c] = [ctx.createSequence(), ctx.createSequence(), ctx.createSequence()];
  const tokens = (n: number, s: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 31 + s) % 590));
  await a.evaluate(tokens(40, 1), { logits: 'none' }); // 40 > 64 / 4
  await b.evaluate(tokens(20, 2), { logits: 'none' });
  assert.equal(ctx.cellsUsed, 60);
  // b needs 10 cells, 4 are free: b fails alone and keeps its 20 positions; a and c go on.
  const [ra, rb, rc] = await Promise.allSettled([a.evaluate([7]), b.evaluate(tokens(10, 3)), c.evaluate([9, 10])]);
  assert.equal(rb.status, 'rejected');
  assert.ok((rb as PromiseRejectedResult).reason instanceof AglmError);
  assert.equal((rb as PromiseRejectedResult).reason.code, 'CONTEXT_FULL');
  assert.equal(b.position, 20);
  assert.equal(ra.status, 'fulfilled');
  assert.equal(rc.status, 'fulfilled');
  assert.equal(a.position, 41);
  assert.equal(c.position, 2);
  assert.equal(ctx.cellsUsed, 63);
  // What a computed is what it computes alone.
  await using alone = model.createContext({ contextSize: 64 });
  const want = await alone.evaluate([...tokens(40, 1), 7]);
  assert.ok(maxAbsDiff((ra as PromiseFulfilledResult<Float32Array>).value, want) <= 1e-5);
  // A generation that needs a cell when none is left fails with CONTEXT_FULL; freeing a sequence makes room.
  await assert.rejects(c.complete([11], { maxTokens: 8, temperature: 0 }), { code: 'CONTEXT_FULL' });
  assert.equal(c.position, 3, 'the prompt token took the last cell; the first generated token found none');
  assert.equal(ctx.cellsUsed, 64);
  a.dispose();
  assert.equal(ctx.cellsUsed, 23);
  const r = await c.complete([11], { maxTokens: 8, temperature: 0 });
  assert.equal(r.tokens.length, 8);
});

test('aborting one sequence mid-generation leaves the others exactly as they would be alone', async (t) => {
  const path = await randomModel(t);
  await using model = await loadModel(path);
  const prompts = randomPrompts(model, 4);
  const alone: Awaited<ReturnType<Model['complete']>>[] = [];
  for (const p of prompts) alone.push(await model.complete(p, { maxTokens: 48, temperature: 0 }));
  await using ctx = model.createContext({ contextSize: 512, sequences: 4 });
  const seqs = prompts.map(() => ctx.createSequence());
  const controller = new AbortController();
  let seen = 0;
  const victim = (async () => {
    for await (const chunk of seqs[1].generate(prompts[1], { maxTokens: 48, temperature: 0, signal: controller.signal })) {
      if (chunk.token >= 0 && ++seen === 10) controller.abort(new Error('stop'));
    }
  })();
  const others = [0, 2, 3].map((i) => seqs[i].complete(prompts[i], { maxTokens: 48, temperature: 0 }));
  await assert.rejects(victim, { code: 'ABORTED' });
  const results = await Promise.all(others);
  assert.deepEqual(results.map((r) => r.tokens), [0, 2, 3].map((i) => alone[i].tokens));
  assert.equal(seqs[1].position, prompts[1].length + 9, 'the aborted call rolled back to before its last evaluation');
});

test('abort during a long prompt stops its step promptly and the sequences batched with it carry on', async (t) => {
  const path = join(tempDir(t), 'abort-model.gguf');
  await writeRandomLlamaModel(path, {
    embeddingLength: 512, blockCount: 6, headCount: 8, headCountKv: 4, feedForwardLength: 1376, vocabSize: 512, contextLength: 2048,
  });
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 2200, sequences: 2, batchSize: 512 });
  const [long, small] = [ctx.createSequence(), ctx.createSequence()];
  const prompt = Array.from({ length: 2000 }, (_, i) => 3 + ((i * 7919) % 500));
  const controller = new AbortController();
  const pending = long.evaluate(prompt, { signal: controller.signal });
  const smallRun = small.complete([1, 5, 9], { maxTokens: 16, temperature: 0 });
  await new Promise((r) => setTimeout(r, 300));
  const abortedAt = performance.now();
  controller.abort(new Error('gone'));
  await assert.rejects(pending, { code: 'ABORTED' });
  const latency = performance.now() - abortedAt;
  t.diagnostic(`abort latency ${latency.toFixed(1)} ms`);
  assert.ok(latency < 250, `rejected ${latency.toFixed(1)} ms after the abort`);
  assert.equal(long.position, 0);
  assert.equal(ctx.cellsUsed, small.position);
  const r = await smallRun;
  assert.deepEqual(r.tokens, (await model.complete([1, 5, 9], { maxTokens: 16, temperature: 0 })).tokens);
});

test('a long prompt is split into chunks and the other sequences keep decoding meanwhile (chunked prefill)', async (t) => {
  const path = await randomModel(t);
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 1024, sequences: 2, batchSize: 32 });
  const [a, b] = [ctx.createSequence(), ctx.createSequence()];
  await b.evaluate([1, 2, 3], { logits: 'none' });
  let bTokens = 0;
  let bTokensWhenPromptDone = -1;
  const prompt = Array.from({ length: 300 }, (_, i) => 3 + ((i * 13) % 590));
  const gen = (async () => {
    for await (const chunk of b.generate([4], { maxTokens: 40, temperature: 0 })) if (chunk.token >= 0) bTokens++;
  })();
  await a.evaluate(prompt, { logits: 'last' }).then(() => (bTokensWhenPromptDone = bTokens));
  await gen;
  t.diagnostic(`b generated ${bTokensWhenPromptDone} tokens while a's 300-token prompt was evaluated in chunks`);
  assert.ok(bTokensWhenPromptDone >= 5, `b generated only ${bTokensWhenPromptDone} tokens during a's prompt`);
});

test('sequences: limits, busy calls, dispose during a step, and use after dispose are typed errors', async () => {
  await using model = await loadModel();
  await using ctx = model.createContext({ contextSize: 256, sequences: 2 });
  const a = ctx.createSequence();
  const b = a.fork();
  assert.throws(() => ctx.createSequence(), { code: 'NO_SEQUENCE_LEFT' });
  assert.throws(() => b.fork(), { code: 'NO_SEQUENCE_LEFT' });
  const first = a.evaluate(Array.from({ length: 200 }, (_, i) => 3 + (i % 500)));
  await assert.rejects(a.evaluate([1]), { code: 'BUSY' });
  assert.throws(() => a.truncate(0), { code: 'BUSY' });
  assert.throws(() => a.fork(), { code: 'BUSY' });
  await first;
  const pending = b.evaluate(Array.from({ length: 200 }, (_, i) => 3 + (i % 500)));
  b.dispose();
  await assert.rejects(pending, { code: 'DISPOSED' });
  await assert.rejects(b.evaluate([1]), { code: 'DISPOSED' });
  assert.equal(ctx.activeSequences, 1);
  const c = ctx.createSequence();
  assert.equal(c.position, 0);
  await c.evaluate([1, 2]);
  assert.equal(ctx.cellsUsed, 202);
  ctx.dispose();
  await assert.rejects(a.evaluate([1]), { code: 'DISPOSED' });
  assert.equal(a.disposed, true);
  assert.throws(() => ctx.createSequence(), { code: 'DISPOSED' });
});

test('chat sessions on two sequences of one context reply as they would alone', async () => {
  await using model = await loadModel();
  const run = async (seq?: Sequence) => {
    const chat = model.createChatSession(seq ? { sequence: seq } : { contextSize: 256 });
    const r1 = await chat.prompt('Tell me a story about a cat.', { maxTokens: 20, temperature: 0 });
    const r2 = await chat.prompt('What happened next?', { maxTokens: 20, temperature: 0 });
    chat.dispose();
    return [r1, r2];
  };
  const alone = await run();
  await using ctx = model.createContext({ contextSize: 512, sequences: 2 });
  const [x, y] = await Promise.all([run(ctx.createSequence()), run(ctx.createSequence())]);
  assert.deepEqual(x, alone);
  assert.deepEqual(y, alone);
  await using other = model.createContext({ contextSize: 64 });
  assert.throws(() => model.createChatSession({ sequence: other.createSequence(), contextSize: 5 } as never), { code: 'INVALID_ARGUMENT' });
});
