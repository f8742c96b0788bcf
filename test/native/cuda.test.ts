// The CUDA backend (native/backends/cuda): its kernels' shared __host__ __device__ arithmetic run on the CPU against
// the reference kernels (cuda-host-tests, built with the host compiler everywhere); the module built by the local
// nvcc, linked against no CUDA library (the driver is opened at run time); and, on a machine without libcuda, the
// module listed by systemInfo with the reason, backend: 'cuda' refused as BACKEND_UNAVAILABLE with that reason, and
// the CPU path unaffected. Running the kernels themselves needs a GPU; nothing here does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { greedyReference, repoRoot } from '../helpers/fixtures.js';

const RELEASE = join(repoRoot, 'build', 'Release');
const HOST_TESTS = join(RELEASE, process.platform === 'win32' ? 'cuda-host-tests.exe' : 'cuda-host-tests');
// Built beside the addon, where the registry probes it without OPEN_AUTOGLM_BACKEND_PATH.
const MODULE = join(RELEASE, process.platform === 'win32' ? 'aglm-backend-cuda.dll' : 'aglm-backend-cuda.so');
const TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_K', 'q5_K', 'q6_K'];

function nvccOnPath(): boolean {
  return spawnSync('nvcc', ['--version'], { encoding: 'utf8' }).status === 0;
}

interface Check {
  check: string;
  ok: boolean;
  maxDiff: number;
  tolerance: number;
  note: string;
}

test('CUDA shared arithmetic: every kernel\'s host twin matches the reference kernels within its stated tolerance', (t) => {
  assert.ok(existsSync(HOST_TESTS), `${HOST_TESTS} is missing: the main native build makes it (npm run build:native)`);
  const r = spawnSync(HOST_TESTS, [], { encoding: 'utf8', timeout: 120_000 });
  const checks = JSON.parse(r.stdout) as Check[];
  for (const c of checks) t.diagnostic(`${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.maxDiff.toExponential(2)} (tolerance ${c.tolerance}) ${c.note}`);
  const names = new Set(checks.map((c) => c.check));
  // Every kernel's arithmetic is covered: each weight type's dequantization and dot product, the activation
  // quantization, both norms, the activations, every rope mode and split-K attention over F32 and F16 caches.
  for (const ty of TYPES) {
    assert.ok(names.has(`dequantize ${ty}`), `no dequantization check for ${ty}`);
    assert.ok(names.has(`dot ${ty} vs exact`) && names.has(`dot ${ty} vs ref dot_row`), `no dot product check for ${ty}`);
  }
  for (const n of ['quantize activations q8_1', 'rms_norm', 'layer_norm', 'silu_mul', 'gelu', 'gelu_erf', 'rope mode 0', 'rope mode 2 + freq factors', 'rope mode 0 YaRN', 'rope mode 8 sections', 'rope mode 24 vision'])
    assert.ok(names.has(n), `no check named ${n}`);
  assert.ok(checks.filter((c) => c.check.startsWith('attention split-K')).length >= 4, 'attention checks over F32 and F16 caches');
  for (const c of checks) assert.ok(c.ok, `${c.check}: ${c.maxDiff} exceeds ${c.tolerance} (${c.note})`);
  assert.equal(r.status, 0, r.stderr);
});

test('CUDA module: built by the local nvcc, with no libcudart, libcublas or libcuda among its needed libraries', (t) => {
  if (!existsSync(MODULE)) {
    if (nvccOnPath()) assert.fail(`nvcc is on the PATH but ${MODULE} was not built`);
    return t.skip('nvcc is not installed here, so the CUDA module is not built');
  }
  const bytes = statSync(MODULE).size;
  t.diagnostic(`aglm-backend-cuda: ${bytes} bytes (${(bytes / 2 ** 20).toFixed(2)} MiB)`);
  assert.ok(bytes < 16 * 2 ** 20, 'the module stays small (no CUDA libraries inside)');
  if (process.platform !== 'linux') return;
  const readelf = spawnSync('readelf', ['-d', MODULE], { encoding: 'utf8' });
  if (readelf.status !== 0) return t.skip('readelf is not available');
  const needed = [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  t.diagnostic(`NEEDED: ${needed.join(', ')}`);
  assert.ok(needed.length > 0, readelf.stdout);
  for (const lib of needed) assert.doesNotMatch(lib, /cudart|cublas|libcuda|nvrtc|libstdc\+\+/, `the module must not link ${lib}`);
});

test('CUDA module without libcuda: listed with its reason; backend: cuda is BACKEND_UNAVAILABLE saying why; the CPU path is unaffected', async (t) => {
  if (!existsSync(MODULE)) return t.skip(nvccOnPath() ? 'the CUDA module was not built' : 'nvcc is not installed here, so the CUDA module is not built');
  const { systemInfo, loadModel } = await import('../../lib/index.js');
  const { nativeBinding } = await import('../../lib/native.js');
  const info = systemInfo();
  const cu = info.backends.find((b) => b.name === 'cuda');
  assert.ok(cu, `backends: ${info.backends.map((b) => b.name).join(', ')}`);
  assert.equal(cu.path, MODULE, 'found beside the addon');
  t.diagnostic(`cuda: ${cu.state}: ${cu.reason}`);
  assert.equal(cu.state, 'unusable');
  assert.equal(cu.score, 0);
  const noDriver = spawnSync('sh', ['-c', 'ldconfig -p 2>/dev/null | grep -q "libcuda.so.1 "']).status !== 0;
  if (noDriver && process.platform === 'linux') {
    assert.match(cu.reason, /no CUDA driver: libcuda\.so\.1 could not be opened/);
    assert.deepEqual(cu.devices, []);
  } else assert.match(cu.reason, /CUDA|compute capability/);
  assert.equal(info.backends[0].name, 'cpu', 'the CPU backend is still chosen first');

  // The module's own report: the fatbin's architectures and its kernels.
  const record = nativeBinding().systemInfo(undefined).backends.find((b) => b.name === 'cuda');
  const report = JSON.parse(record?.report ?? '{}') as { fatbinArchs: string; fatbinBytes: number; kernels: string; error: string | null };
  t.diagnostic(`fatbin: ${report.fatbinArchs} (${report.fatbinBytes} bytes)`);
  for (const sm of ['sm_75', 'sm_80', 'sm_86', 'sm_89', 'sm_90']) assert.ok(report.fatbinArchs.split(' ').includes(sm), `${sm} in ${report.fatbinArchs}`);
  assert.match(report.fatbinArchs, /compute_\d+/, 'a PTX for newer GPUs');
  for (const ty of TYPES) assert.match(report.kernels, new RegExp(`mmv/mm/(mmf/)?get_rows_${ty}`), `kernels for ${ty}`);
  assert.equal(report.error, noDriver ? cu.reason : report.error);

  await assert.rejects(loadModel(undefined, { backend: 'cuda' }), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'BACKEND_UNAVAILABLE');
    assert.match(e.message, /cuda/);
    assert.ok(e.message.includes(cu.reason), `the message carries the reason: ${e.message}`);
    return true;
  });
  await using model = await loadModel();
  assert.equal(model.backend.backend, 'cpu');
  const r = await model.complete('Once upon a time', { maxTokens: 8, temperature: 0 });
  assert.equal(r.tokens.length, 8);
});

// The CUDA emulator as the driver (build/Release/test-cuda/libcuda.so.1, native/tests/cuda-emu): one device of compute
// capability 9.0 whose kernels are the module's own, built for the host. The module's driver discovery, its score and
// reasons, and the fallback when a chosen CUDA backend cannot build its program (FAKE_CUDA_NO_KERNELS=1: the fatbin has
// no code for the device) run here, each in its own process (the driver is opened once per process).
const FAKE = join(RELEASE, 'test-cuda', 'libcuda.so.1');

interface FakeRun {
  cuda: { state: string; score: number; reason: string; devices: { name: string; memoryTotal?: number }[] };
  chosen: string;
  named: { code: string; message: string };
  modelBackend: string;
  tokens: number[];
  warnings: { code?: string; message: string }[];
}

function withFakeDriver(env: Record<string, string>): FakeRun {
  const ref = greedyReference();
  const script = `
    import { systemInfo, loadModel } from './lib/index.ts';
    const warnings = [];
    process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
    const info = systemInfo();
    let named;
    try { (await loadModel(undefined, { backend: 'cuda' })).dispose(); named = { code: 'LOADED', message: '' }; }
    catch (e) { named = { code: e.code, message: e.message }; }
    const m = await loadModel();
    const r = await m.complete(${JSON.stringify(ref.prompt)}, { maxTokens: 64, temperature: 0 });
    m.dispose();
    await new Promise((res) => setImmediate(res));
    console.log(JSON.stringify({ cuda: info.backends.find((b) => b.name === 'cuda'), chosen: info.chosen.backend, named,
      modelBackend: m.backend.backend, tokens: r.tokens, warnings }));`;
  const childEnv: Record<string, string | undefined> = { ...process.env, OPEN_AUTOGLM_CUDA_LIBRARY: FAKE, ...env };
  delete childEnv.OPEN_AUTOGLM_BACKEND_PATH;
  delete childEnv.OPEN_AUTOGLM_CUDA_EXPERIMENTAL;
  Object.assign(childEnv, env);
  const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', env: childEnv, timeout: 120_000 });
  assert.equal(p.status, 0, `${p.stderr}\n${p.stdout}`);
  return JSON.parse(p.stdout.trim().split('\n').pop()!) as FakeRun;
}

test('CUDA module on a stand-in driver: the device is found; an old driver, the unverified forward pass and a failed program each say why, and the CPU runs the model', (t) => {
  if (process.platform !== 'linux') return t.skip('the stand-in driver is built on Linux only');
  if (!existsSync(MODULE)) return t.skip(nvccOnPath() ? `${MODULE} is missing (npm run build:native)` : 'the CUDA module is not built here (no nvcc at build time)');
  assert.ok(existsSync(FAKE), `${FAKE} is missing (npm run build:native)`);
  const ref = greedyReference();

  // A driver for CUDA 11.8: too old for kernels built with the local nvcc (CUDA 12 or 13).
  const old = withFakeDriver({ FAKE_CUDA_DRIVER_VERSION: '11080', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1' });
  t.diagnostic(`driver 11.8: ${old.cuda.state}, score ${old.cuda.score}: ${old.cuda.reason}`);
  assert.deepEqual(old.cuda.devices.map((d) => d.name), ['open-autoglm fake GPU']);
  assert.equal(old.cuda.score, 0);
  assert.match(old.cuda.reason, /open-autoglm fake GPU \(compute capability 9\.0\).*the NVIDIA driver supports CUDA 11\.8, and the kernels were built with CUDA \d+\.\d+: update the driver/);
  assert.equal(old.chosen, 'cpu');

  // A current driver: the device qualifies, but the forward pass has not run on a GPU yet, so CUDA scores 0 unless
  // OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1.
  const current = withFakeDriver({ FAKE_CUDA_DRIVER_VERSION: '99000' });
  t.diagnostic(`driver 99.0: ${current.cuda.state}, score ${current.cuda.score}: ${current.cuda.reason}`);
  assert.equal(current.cuda.score, 0);
  assert.match(current.cuda.reason, /has not been verified on a GPU yet \(set OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1/);

  // Experimental: CUDA scores above the CPU and is chosen; its program cannot load the kernels (FAKE_CUDA_NO_KERNELS),
  // so the model falls back to the CPU with a warning naming the failure, and asking for 'cuda' by name is a typed
  // error instead.
  const exp = withFakeDriver({ FAKE_CUDA_DRIVER_VERSION: '99000', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1', FAKE_CUDA_NO_KERNELS: '1' });
  t.diagnostic(`experimental: score ${exp.cuda.score}; named: ${exp.named.code}: ${exp.named.message}; warnings: ${JSON.stringify(exp.warnings)}`);
  assert.ok(exp.cuda.score > 100, `score ${exp.cuda.score}`);
  assert.equal(exp.chosen, 'cuda');
  assert.equal(exp.named.code, 'BACKEND_UNAVAILABLE');
  assert.match(exp.named.message, /cuModuleLoadData failed: no kernel image is available .*fake GPU/);
  assert.equal(exp.modelBackend, 'cpu');
  assert.ok(exp.warnings.some((w) => w.code === 'OPEN_AUTOGLM_BACKEND_FALLBACK' && /cuda.*cuModuleLoadData/.test(w.message)), JSON.stringify(exp.warnings));
  for (const r of [old, current, exp]) assert.deepEqual(r.tokens, ref.generatedTokens, 'the CPU gives the greedy reference');
});

test('backend-ops: the CUDA module on the CUDA emulator equals the CPU reference on every op, weight type, width and batch', (t) => {
  if (process.platform !== 'linux') return t.skip('the CUDA emulator is built on Linux only');
  if (!existsSync(MODULE)) return t.skip(nvccOnPath() ? `${MODULE} is missing (npm run build:native)` : 'the CUDA module is not built here (no nvcc at build time)');
  const bin = join(RELEASE, 'backend-ops');
  assert.ok(existsSync(FAKE) && existsSync(bin), `${FAKE} or ${bin} is missing (npm run build:native)`);
  const env = { ...process.env, OPEN_AUTOGLM_CUDA_LIBRARY: FAKE, FAKE_CUDA_DRIVER_VERSION: '13000', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1' };
  const r = spawnSync(bin, ['--module', MODULE, '--json'], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20, env });
  assert.equal(r.error, undefined, `${r.error?.message}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as { passed: number; failed: number; skipped: number; seconds: number; cases: { name: string; status: string; nmse: number; tolerance: number; message?: string }[] };
  t.diagnostic(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped in ${report.seconds.toFixed(1)} s`);
  for (const c of report.cases) assert.equal(c.status, 'ok', `${c.name}: ${c.status} nmse ${c.nmse} (tolerance ${c.tolerance})${c.message ? `: ${c.message}` : ''}`);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  assert.ok(report.passed >= 280 && report.skipped === 0, `${report.passed} passed, ${report.skipped} skipped`);
});
