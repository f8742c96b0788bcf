// The addon in worker_threads and at process exit: per-environment state, a worker terminated mid-evaluation, and a
// process exiting while a native evaluation runs; none may crash or hang the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { ensureDist, greedyReference, repoRoot } from '../helpers/fixtures.js';

// Workers load the built package (dist/): the TS loader of the test runner does not reach eval'd workers.
const dist = ensureDist();

const ref = greedyReference();

function runWorker(code: string): Promise<{ message?: unknown; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    let message: unknown;
    w.on('message', (m) => (message = m));
    w.on('error', reject);
    w.on('exit', (exitCode) => resolve({ message, exitCode }));
  });
}

test('two worker threads each load the model and generate the reference text', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(dist)}).then(async ({ loadModel }) => {
      const m = await loadModel();
      const r = await m.complete(${JSON.stringify(ref.prompt)}, { maxTokens: 64, temperature: 0 });
      m.dispose();
      parentPort.postMessage(r.tokens);
    });`;
  const [a, b] = await Promise.all([runWorker(code), runWorker(code)]);
  assert.deepEqual(a.message, ref.generatedTokens);
  assert.deepEqual(b.message, ref.generatedTokens);
});

test('terminating a worker during a long evaluation does not crash the process', async () => {
  const w = new Worker(
    `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(dist)}).then(async ({ loadModel }) => {
      const m = await loadModel();
      const ctx = m.createContext({ contextSize: 2048, threads: 1 });
      parentPort.postMessage('started');
      for (;;) { ctx.clear(); await ctx.evaluate(Array.from({ length: 2000 }, (_, i) => 3 + (i % 500))); }
    });`,
    { eval: true },
  );
  await new Promise<void>((resolve, reject) => {
    w.on('message', () => resolve());
    w.on('error', reject);
  });
  await new Promise((r) => setTimeout(r, 30));
  const code = await w.terminate();
  assert.equal(typeof code, 'number');
  // The process is still healthy: load and run again here.
  const { loadModel } = await import('../../lib/index.js');
  await using m = await loadModel();
  assert.equal((await m.complete('Once', { maxTokens: 4, temperature: 0 })).tokens.length, 4);
});

test('process.exit during an evaluation exits cleanly with the requested code', () => {
  const p = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { loadModel } from './lib/index.ts';
       const m = await loadModel();
       const ctx = m.createContext({ contextSize: 2048 });
       ctx.evaluate(Array.from({ length: 2000 }, (_, i) => 3 + (i % 500))).catch(() => {});
       setTimeout(() => process.exit(7), 5);`,
    ],
    { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(p.signal, null, p.stderr);
  assert.equal(p.status, 7, p.stderr);
});
