// Isolation from the GPU modules: the addon alone (no aglm-backend-* beside it, as a prebuild without them) loads,
// lists only the CPU backend and runs stories260K; and with the modules present on a machine without a Vulkan loader
// and without libcuda (OPEN_AUTOGLM_VULKAN_LOADER / OPEN_AUTOGLM_CUDA_LIBRARY pointed at a missing file), each module
// is listed as unusable with a reason naming the missing library, backend: 'vulkan' / 'cuda' is BACKEND_UNAVAILABLE
// carrying that reason, and the CPU backend gives the greedy reference. Each case runs in its own process, since the
// registry probes its modules once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { greedyReference, repoRoot, tempDir } from '../helpers/fixtures.js';

const RELEASE = join(repoRoot, 'build', 'Release');
const SUFFIX = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';
const MODULES = ['vulkan', 'cuda'].filter((name) => existsSync(join(RELEASE, `aglm-backend-${name}${SUFFIX}`)));

interface ChildReport {
  backends: { name: string; state: string; reason: string; path: string }[];
  searchPath: string[];
  chosen: string;
  refused: Record<string, { code: string; message: string }>;
  modelBackend: string;
  tokens: number[];
}

/** Runs the TS API in a child process with `env` on top of this one's (less OPEN_AUTOGLM_BACKEND_PATH). */
function child(env: Record<string, string>, askFor: string[]): ChildReport {
  const ref = greedyReference();
  const script = `
    import { systemInfo, loadModel } from './lib/index.ts';
    import { nativeBinding } from './lib/native.ts';
    const raw = nativeBinding().systemInfo(undefined);
    const refused = {};
    for (const name of ${JSON.stringify(askFor)}) {
      try { (await loadModel(undefined, { backend: name })).dispose(); refused[name] = { code: 'LOADED', message: '' }; }
      catch (e) { refused[name] = { code: e.code, message: e.message }; }
    }
    const m = await loadModel();
    const r = await m.complete(${JSON.stringify(ref.prompt)}, { maxTokens: 64, temperature: 0 });
    m.dispose();
    console.log(JSON.stringify({
      backends: raw.backends.map((b) => ({ name: b.name, state: b.state, reason: b.reason, path: b.path })),
      searchPath: raw.searchPath, chosen: systemInfo().chosen.backend, refused, modelBackend: m.backend.backend, tokens: r.tokens,
    }));`;
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.OPEN_AUTOGLM_BACKEND_PATH;
  const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: childEnv,
    timeout: 120_000,
  });
  assert.equal(p.status, 0, `${p.stderr}\n${p.stdout}`);
  return JSON.parse(p.stdout.trim().split('\n').pop()!) as ChildReport;
}

test('the addon alone (no GPU module beside it) loads, lists only the CPU backend and gives the greedy reference', (t) => {
  const addon = join(RELEASE, 'open_autoglm.node');
  assert.ok(existsSync(addon), `${addon} is missing (npm run build:native)`);
  // A prebuild's layout holding the addon and nothing else; node-gyp-build reads the package from
  // OPEN_AUTOGLM_PREBUILD (its <NAME>_PREBUILD override), so nothing in build/Release is seen.
  const pkg = tempDir(t, 'aglm-alone-');
  const dir = join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(addon, join(dir, 'open-autoglm.napi.node'));
  const r = child({ OPEN_AUTOGLM_PREBUILD: pkg }, ['vulkan', 'cuda']);
  t.diagnostic(JSON.stringify({ backends: r.backends, searchPath: r.searchPath }));
  assert.deepEqual(r.searchPath, [dir], 'the addon was loaded from the temp dir');
  assert.deepEqual(r.backends.map((b) => [b.name, b.state]), [['cpu', 'ready']]);
  assert.equal(r.chosen, 'cpu');
  for (const name of ['vulkan', 'cuda']) {
    assert.equal(r.refused[name].code, 'BACKEND_UNAVAILABLE');
    assert.match(r.refused[name].message, new RegExp(`no backend named '${name}'.*aglm-backend-${name}`));
  }
  assert.equal(r.modelBackend, 'cpu');
  assert.deepEqual(r.tokens, greedyReference().generatedTokens);
});

test('the GPU modules present, no Vulkan loader and no libcuda: each unusable naming the missing library; asking for one is BACKEND_UNAVAILABLE with it; the CPU gives the greedy reference', (t) => {
  if (MODULES.length === 0) return t.skip('no GPU module is built here (no glslc and Vulkan headers, no nvcc)');
  const missing = join(repoRoot, 'no-such-dir', 'missing-library');
  const r = child({ OPEN_AUTOGLM_VULKAN_LOADER: missing, OPEN_AUTOGLM_CUDA_LIBRARY: missing, OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1' }, MODULES);
  t.diagnostic(JSON.stringify(r.backends));
  const expected: Record<string, RegExp> = { vulkan: /no Vulkan loader/, cuda: /CUDA driver library/ };
  for (const name of MODULES) {
    const b = r.backends.find((x) => x.name === name);
    assert.ok(b, `${name} listed: ${r.backends.map((x) => x.name).join(', ')}`);
    assert.equal(b.path, join(RELEASE, `aglm-backend-${name}${SUFFIX}`), 'probed beside the addon');
    assert.equal(b.state, 'unusable');
    assert.match(b.reason, expected[name]);
    assert.ok(b.reason.includes(missing), `the reason names the missing library: ${b.reason}`);
    assert.equal(r.refused[name].code, 'BACKEND_UNAVAILABLE');
    assert.ok(r.refused[name].message.includes(b.reason), `the error carries the reason: ${r.refused[name].message}`);
  }
  assert.equal(r.backends[0].name, 'cpu');
  assert.equal(r.chosen, 'cpu');
  assert.equal(r.modelBackend, 'cpu');
  assert.deepEqual(r.tokens, greedyReference().generatedTokens);
});
