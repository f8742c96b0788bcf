// Backend modules behind HAL v2: the test modules (native/backends/test-module, built into build/Release/test-backends)
// are loaded with dlopen from OPEN_AUTOGLM_BACKEND_PATH. One computes (the CPU backend on the reference kernels, as a
// separate library); the others refuse the HAL version, report themselves unusable, or hand back no table; a file that
// is not a library fails to load. Each is recorded with its reason, and none of them stops the CPU path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { GgmlType, loadModel, systemInfo } from '../../lib/index.js';
import { writeRandomModel } from '../../lib/tools/random-model.js';
import { defaultModelPath, greedyReference, maxAbsDiff, repoRoot, tempDir } from '../helpers/fixtures.js';

const moduleDir = join(repoRoot, 'build', 'Release', 'test-backends');
const suffix = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';

test('the test modules are built beside the addon', () => {
  for (const name of ['testcpu', 'testold', 'testbroken', 'testnull']) {
    assert.ok(existsSync(join(moduleDir, `aglm-backend-${name}${suffix}`)), `build/Release/test-backends/aglm-backend-${name}${suffix} (npm run build:native)`);
  }
});

test('systemInfo records every module with its state and reason; a file that is no library fails to load', (t) => {
  const junkDir = tempDir(t, 'aglm-junk-');
  writeFileSync(join(junkDir, `aglm-backend-junk${suffix}`), 'this is not a shared library\n');
  const old = process.env.OPEN_AUTOGLM_BACKEND_PATH;
  process.env.OPEN_AUTOGLM_BACKEND_PATH = [moduleDir, junkDir].join(delimiter);
  t.after(() => (old === undefined ? delete process.env.OPEN_AUTOGLM_BACKEND_PATH : (process.env.OPEN_AUTOGLM_BACKEND_PATH = old)));
  const info = systemInfo();
  const by = new Map(info.backends.map((b) => [b.name, b]));
  assert.ok(info.backendSearchPath.includes(moduleDir) && info.backendSearchPath.includes(junkDir));
  assert.equal(by.get('cpu')?.state, 'ready');
  assert.equal(by.get('cpu')?.path, '');
  assert.equal(info.chosen.backend, 'cpu', 'the built-in CPU backend stays the choice');
  const testcpu = by.get('testcpu')!;
  assert.equal(testcpu.state, 'ready');
  assert.match(testcpu.path, /aglm-backend-testcpu/);
  assert.equal(testcpu.devices[0]?.kind, 'cpu');
  assert.equal(by.get('testold')?.state, 'failed');
  assert.match(by.get('testold')!.reason, /HAL API version 1; this build needs version 3/);
  assert.equal(by.get('testbroken')?.state, 'unusable');
  assert.match(by.get('testbroken')!.reason, /no usable device/);
  assert.equal(by.get('testnull')?.state, 'failed');
  assert.match(by.get('testnull')!.reason, /refused HAL API version 3: this test module serves no API version/);
  assert.equal(by.get('junk')?.state, 'failed');
  assert.match(by.get('junk')!.reason, /dlopen failed|LoadLibrary failed/);
});

test('a model runs on the test module and computes what the built-in ref kernels compute', async (t) => {
  const old = process.env.OPEN_AUTOGLM_BACKEND_PATH;
  process.env.OPEN_AUTOGLM_BACKEND_PATH = moduleDir;
  t.after(() => (old === undefined ? delete process.env.OPEN_AUTOGLM_BACKEND_PATH : (process.env.OPEN_AUTOGLM_BACKEND_PATH = old)));
  await using onModule = await loadModel(defaultModelPath, { backend: 'testcpu' });
  await using builtIn = await loadModel(defaultModelPath, { cpuVariant: 'ref' });
  assert.equal(onModule.backend.backend, 'testcpu');
  assert.match(onModule.backend.description, /ref: the test module's only kernels/);
  const ref = greedyReference();
  const r = await onModule.complete(ref.prompt, { maxTokens: 64, temperature: 0 });
  assert.deepEqual(r.tokens, ref.generatedTokens);
  const tokens = onModule.tokenize(ref.prompt + ref.text);
  await using a = onModule.createContext({ contextSize: 128 });
  await using b = builtIn.createContext({ contextSize: 128 });
  const la = await a.evaluate(tokens, { logits: 'all' }), lb = await b.evaluate(tokens, { logits: 'all' });
  assert.equal(maxAbsDiff(la, lb), 0, 'same executor, same reference kernels: identical logits');
});

test('a backend that cannot be used fails with BACKEND_UNAVAILABLE and its reason, never falling back', async (t) => {
  const old = process.env.OPEN_AUTOGLM_BACKEND_PATH;
  process.env.OPEN_AUTOGLM_BACKEND_PATH = moduleDir;
  t.after(() => (old === undefined ? delete process.env.OPEN_AUTOGLM_BACKEND_PATH : (process.env.OPEN_AUTOGLM_BACKEND_PATH = old)));
  await assert.rejects(loadModel(defaultModelPath, { backend: 'testold' }), { code: 'BACKEND_UNAVAILABLE', message: /HAL API version 1/ });
  await assert.rejects(loadModel(defaultModelPath, { backend: 'testbroken' }), { code: 'BACKEND_UNAVAILABLE', message: /no usable device/ });
  await assert.rejects(loadModel(defaultModelPath, { backend: 'nosuch' }), {
    code: 'BACKEND_UNAVAILABLE',
    message: new RegExp(`no backend named 'nosuch'.*aglm-backend-nosuch\\${suffix}`),
  });
  await assert.rejects(loadModel(defaultModelPath, { backend: '../evil' }), { code: 'INVALID_ARGUMENT' });
  // The CPU path is untouched by all of it.
  await using model = await loadModel(defaultModelPath);
  assert.equal(model.backend.backend, 'cpu');
});

test("the core asks the module's supports(): a weight type it refuses is a typed error, the CPU runs it", async (t) => {
  const old = process.env.OPEN_AUTOGLM_BACKEND_PATH;
  process.env.OPEN_AUTOGLM_BACKEND_PATH = moduleDir;
  t.after(() => (old === undefined ? delete process.env.OPEN_AUTOGLM_BACKEND_PATH : (process.env.OPEN_AUTOGLM_BACKEND_PATH = old)));
  const dir = tempDir(t, 'aglm-q4k-');
  const path = join(dir, 'q4k.gguf');
  const shape = { embeddingLength: 256, blockCount: 1, headCount: 4, headCountKv: 4, feedForwardLength: 512, vocabSize: 300, contextLength: 64 };
  await writeRandomModel(path, shape, { type: GgmlType.Q4_K, seed: 3 });
  await assert.rejects(loadModel(path, { backend: 'testcpu' }), { code: 'UNSUPPORTED_TENSOR_TYPE', message: /testcpu backend cannot run (embed|matmul) with weight .* of type 12/ });
  await using model = await loadModel(path);
  assert.equal((await model.complete('Once', { maxTokens: 4, temperature: 0 })).tokens.length, 4);
});

test('a backend chosen by score whose program cannot be created: the model runs on the CPU, said by a process warning and in systemInfo; asked for by name it is an error', async (t) => {
  const dir = join(repoRoot, 'build', 'Release', 'test-fallback');
  assert.ok(existsSync(join(dir, `aglm-backend-testfail${suffix}`)), 'build/Release/test-fallback (npm run build:native)');
  const old = process.env.OPEN_AUTOGLM_BACKEND_PATH;
  process.env.OPEN_AUTOGLM_BACKEND_PATH = dir;
  t.after(() => (old === undefined ? delete process.env.OPEN_AUTOGLM_BACKEND_PATH : (process.env.OPEN_AUTOGLM_BACKEND_PATH = old)));
  assert.equal(systemInfo().chosen.backend, 'testfail', 'it scores above the CPU backend');
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  await using model = await loadModel();
  assert.equal(model.backend.backend, 'cpu');
  const ref = greedyReference();
  assert.deepEqual((await model.complete(ref.prompt, { maxTokens: 64, temperature: 0 })).tokens, ref.generatedTokens);
  await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
  const w = warnings.find((x) => (x as Error & { code?: string }).code === 'OPEN_AUTOGLM_BACKEND_FALLBACK');
  assert.ok(w, `warnings: ${warnings.map((x) => x.message).join(' | ')}`);
  assert.match(w.message, /testfail backend could not run .*failed to initialise.*runs on the CPU/);
  assert.ok(systemInfo().backendWarnings.includes(w.message));
  await assert.rejects(loadModel(undefined, { backend: 'testfail' }), { code: 'BACKEND_UNAVAILABLE', message: /failed to initialise/ });
});
