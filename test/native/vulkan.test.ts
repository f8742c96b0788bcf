// The Vulkan backend's runtime (native/backends/vulkan): the loader opened at run time (no link-time libvulkan),
// device discovery with the features the kernels will use and the selection score (a CPU device such as lavapipe is
// never chosen unless named), and the first compute kernel on a device against a double-precision reference
// (normalised mean squared error, as llama.cpp's test-backend-ops measures it). CI runs it on lavapipe (mesa's
// Vulkan on the CPU); it skips, saying why, where the backend is not built (no glslc or Vulkan headers) or no Vulkan
// driver exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

const BIN = join(repoRoot, 'build', 'Release', process.platform === 'win32' ? 'vk-selftest.exe' : 'vk-selftest');
const SUFFIX = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';
// The module is built beside the addon, where the registry probes it without OPEN_AUTOGLM_BACKEND_PATH.
const MODULE = join(repoRoot, 'build', 'Release', `aglm-backend-vulkan${SUFFIX}`);

interface Report {
  loader: string | null;
  error: string | null;
  devices: { name: string; type: string; score: number; why: string; subgroupSize: number; memoryBytes: number }[];
  checks: { kernel: string; shape: string; nmse: number; tolerance: number; maxAbsDiff: number; ok: boolean; error?: string }[];
}

function run(env: Record<string, string> = {}): { code: number | null; report: Report; raw: string } {
  const r = spawnSync(BIN, [], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status, report: JSON.parse(r.stdout) as Report, raw: r.stdout + r.stderr };
}

test('Vulkan: devices found and scored; the F32 matmul kernel equals the reference on a device', (t) => {
  if (!existsSync(BIN)) return t.skip('the Vulkan backend is not built here (glslc or the Vulkan headers are missing at build time)');
  const { code, report, raw } = run();
  if (code === 77) return t.skip(`no Vulkan here: ${report.error ?? 'no device'}`);
  assert.equal(code, 0, raw);
  assert.ok(report.devices.length >= 1);
  for (const d of report.devices) {
    t.diagnostic(`${d.name} (${d.type}): score ${d.score} (${d.why}); subgroup ${d.subgroupSize}; ${(d.memoryBytes / 2 ** 30).toFixed(1)} GiB`);
    if (d.type === 'cpu') assert.equal(d.score, 0, 'a CPU Vulkan device is never chosen over the CPU backend');
    else assert.ok(d.score > 0, d.why);
  }
  assert.ok(report.checks.length >= 5);
  for (const c of report.checks) {
    t.diagnostic(`${c.kernel} ${c.shape}: nmse ${c.nmse.toExponential(2)} (tolerance ${c.tolerance}), max |diff| ${c.maxAbsDiff.toExponential(2)}`);
    assert.ok(c.ok, `${c.kernel} ${c.shape}: ${c.error ?? `nmse ${c.nmse}`}`);
  }
});

test('Vulkan: without a loader the runtime says so and nothing links libvulkan', (t) => {
  if (!existsSync(BIN)) return t.skip('the Vulkan backend is not built here (glslc or the Vulkan headers are missing at build time)');
  const { code, report } = run({ OPEN_AUTOGLM_VULKAN_LOADER: join(repoRoot, 'no-such-libvulkan.so') });
  assert.equal(code, 77);
  assert.equal(report.loader, null);
  assert.match(report.error!, /no Vulkan loader/);
  assert.deepEqual(report.devices, []);
  if (process.platform === 'linux') {
    const readelf = spawnSync('readelf', ['-d', BIN], { encoding: 'utf8' });
    if (readelf.status === 0) assert.doesNotMatch(readelf.stdout, /NEEDED.*libvulkan/, 'vk-selftest must not link libvulkan');
  }
});

test('Vulkan module: listed by systemInfo with its devices and score; a CPU Vulkan device is used only by name; without a loader it is unusable with the reason and backend: vulkan is BACKEND_UNAVAILABLE; the CPU path is unaffected', async (t) => {
  if (!existsSync(MODULE)) return t.skip('the Vulkan backend is not built here (glslc or the Vulkan headers are missing at build time)');
  const { systemInfo, loadModel } = await import('../../lib/index.js');
  const info = systemInfo();
  const vk = info.backends.find((b) => b.name === 'vulkan');
  assert.ok(vk, `backends: ${info.backends.map((b) => b.name).join(', ')}`);
  assert.equal(vk.path, MODULE, 'found beside the addon');
  t.diagnostic(`vulkan: ${vk.state} (score ${vk.score}): ${vk.reason}`);
  const selftest = existsSync(BIN) ? run() : undefined;
  if (selftest?.code === 0) {
    assert.equal(vk.devices.length, selftest.report.devices.length);
    assert.deepEqual(vk.devices.map((d) => d.name).sort(), selftest.report.devices.map((d) => d.name).sort());
    assert.equal(vk.state, 'ready');
    if (selftest.report.devices.every((d) => d.type === 'cpu')) {
      assert.equal(vk.score, 1, 'only a CPU device: below the CPU backend');
      assert.match(vk.reason, /only when asked for by name/);
      assert.equal(info.chosen.backend, 'cpu', 'the CPU backend is still chosen');
    } else assert.ok(vk.score > 100, 'a GPU scores above the CPU backend');
  } else {
    assert.equal(vk.state, 'unusable');
    assert.match(vk.reason, /no Vulkan|no physical device|vkCreateInstance/);
  }
  await using model = await loadModel();
  assert.equal(model.backend.backend, info.chosen.backend);
  const r = await model.complete('Once upon a time', { maxTokens: 8, temperature: 0 });
  assert.equal(r.tokens.length, 8);
});

test('Vulkan module without a Vulkan loader: loads, unusable with the reason; backend: vulkan is BACKEND_UNAVAILABLE with it; CPU models run', (t) => {
  if (!existsSync(MODULE)) return t.skip('the Vulkan backend is not built here (glslc or the Vulkan headers are missing at build time)');
  const script = `
    import { systemInfo, loadModel } from './lib/index.ts';
    const vk = systemInfo().backends.find((b) => b.name === 'vulkan');
    let code = null, message = null;
    try { await loadModel(undefined, { backend: 'vulkan' }); } catch (e) { code = e.code; message = e.message; }
    const m = await loadModel();
    const r = await m.complete('Once upon a time', { maxTokens: 4, temperature: 0 });
    console.log(JSON.stringify({ state: vk?.state, reason: vk?.reason, code, message, backend: m.backend.backend, n: r.tokens.length }));`;
  const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, OPEN_AUTOGLM_VULKAN_LOADER: join(repoRoot, 'no-such-libvulkan.so') },
    timeout: 120_000,
  });
  assert.equal(p.status, 0, p.stderr);
  const out = JSON.parse(p.stdout.trim().split('\n').pop()!);
  t.diagnostic(JSON.stringify(out));
  assert.equal(out.state, 'unusable');
  assert.match(out.reason, /no Vulkan loader/);
  assert.equal(out.code, 'BACKEND_UNAVAILABLE');
  assert.match(out.message, /no Vulkan loader/);
  assert.equal(out.backend, 'cpu');
  assert.equal(out.n, 4);
});
