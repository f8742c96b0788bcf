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
import { repoRoot } from '../helpers/fixtures.js';

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
  for (const ty of TYPES) assert.ok(report.kernels.includes(`mmv/mm/get_rows_${ty}`), `kernels for ${ty}`);
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
