// Greedy generation on stories260K reproduces the reference token ids and text (llama.cpp and llama2.c agree on
// them), with each CPU kernel variant forced in turn, through complete(), generate() and the OPEN_AUTOGLM_CPU override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../../lib/index.js';
import { greedyReference, repoRoot, runnableVariants } from '../helpers/fixtures.js';

const ref = greedyReference();

for (const variant of runnableVariants()) {
  test(`greedy 64 tokens match the reference (cpu variant ${variant})`, async () => {
    await using model = await loadModel(undefined, { cpuVariant: variant });
    assert.match(model.backend.description, new RegExp(`^${variant}`));
    assert.deepEqual([...model.tokenize(ref.prompt)], ref.promptTokens);
    const r = await model.complete(ref.prompt, { maxTokens: 64, temperature: 0 });
    assert.deepEqual(r.tokens, ref.generatedTokens);
    assert.equal(ref.prompt + r.text, ref.text);
    assert.equal(r.stopReason, 'maxTokens');
    assert.equal(r.timings.generatedTokens, 64);
    assert.equal(r.timings.promptTokens, 5);
  });
}

test('generate() streams the same tokens and text as complete()', async () => {
  await using model = await loadModel();
  const tokens: number[] = [];
  let text = '';
  for await (const chunk of model.generate(ref.prompt, { maxTokens: 64, temperature: 0 })) {
    if (chunk.token >= 0) tokens.push(chunk.token);
    text += chunk.text;
  }
  assert.deepEqual(tokens, ref.generatedTokens);
  assert.equal(ref.prompt + text, ref.text);
});

test('OPEN_AUTOGLM_CPU forces the variant for a whole process', () => {
  const script = `
    import { loadModel } from './lib/index.ts';
    const m = await loadModel();
    const r = await m.complete(${JSON.stringify(ref.prompt)}, { maxTokens: 64, temperature: 0 });
    console.log(JSON.stringify({ d: m.backend.description, t: r.tokens }));`;
  for (const variant of runnableVariants()) {
    const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, OPEN_AUTOGLM_CPU: variant },
      encoding: 'utf8',
    });
    assert.equal(p.status, 0, p.stderr);
    const out = JSON.parse(p.stdout.trim().split('\n').pop()!);
    assert.match(out.d, new RegExp(`^${variant}.*OPEN_AUTOGLM_CPU`));
    assert.deepEqual(out.t, ref.generatedTokens);
  }
});

test('an unknown OPEN_AUTOGLM_CPU value is a typed error', () => {
  const p = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `import { loadModel } from './lib/index.ts'; try { await loadModel(); } catch (e) { console.log(e.code); }`],
    { cwd: repoRoot, env: { ...process.env, OPEN_AUTOGLM_CPU: 'sse9' }, encoding: 'utf8' },
  );
  assert.equal(p.stdout.trim(), 'INVALID_ARGUMENT', p.stderr);
});
