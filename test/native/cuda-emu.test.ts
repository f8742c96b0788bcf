// The CUDA backend's forward pass run whole on the CUDA emulator (native/tests/cuda-emu: the module's own kernels
// built for the host, every CUDA thread a fiber; build/Release/test-cuda/libcuda.so.1 loaded as the driver): the
// module's host code (buffers, offsets, launches, split-K, streams, the gpuLayers hand-off) and the kernels' indexing,
// shared memory, warp operations and wmma operands, against llama.cpp's reference and the CPU backend. What no
// emulator shows (timing, data races between threads, the GPU's own arithmetic units) waits for scripts/gpu-check.sh on
// an NVIDIA GPU. The models run in a child process (test/helpers/cuda-emu-models.ts): a process opens its driver once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

const RELEASE = join(repoRoot, 'build', 'Release');
const MODULE = join(RELEASE, 'aglm-backend-cuda.so');
const EMULATOR = join(RELEASE, 'test-cuda', 'libcuda.so.1');

interface ModelRow {
  arch: string;
  type: string;
  decodeVsNative: number;
  decodeVsF32: number;
  promptVsF32: number;
}

test('models on the CUDA emulator: stories260K gives the 64 greedy reference tokens and logits within 1e-4; sequences batched equal each alone; gpuLayers 2 of 5; llama, qwen2, chatglm and glm4 in F32, F16, Q8_0, Q4_0 and Q4_K and the glm4v vision tower agree with the CPU', (t) => {
  if (process.platform !== 'linux') return t.skip('the CUDA emulator is built on Linux only');
  if (!existsSync(MODULE)) return t.skip('the CUDA module is not built here (no nvcc at build time)');
  assert.ok(existsSync(EMULATOR), `${EMULATOR} is missing (npm run build:native)`);
  const env: Record<string, string | undefined> = { ...process.env, OPEN_AUTOGLM_CUDA_LIBRARY: EMULATOR, FAKE_CUDA_DRIVER_VERSION: '13000', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1' };
  delete env.OPEN_AUTOGLM_BACKEND_PATH;
  const p = spawnSync(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cuda-emu-models.ts')], { cwd: repoRoot, encoding: 'utf8', env, timeout: 600_000 });
  assert.equal(p.status, 0, `${p.stderr}\n${p.stdout}`);
  const r = JSON.parse(p.stdout.trim().split('\n').pop()!) as {
    backend: string; description: string; greedyEqual: boolean; logitsMaxDiff: number; batchedEqual: boolean[];
    splitDescription: string; splitGreedyEqual: boolean; models: ModelRow[];
    vision: { type: string; rows: number; wantRows: number; nmse: number; tokensEqual: boolean }[];
  };
  t.diagnostic(`${r.description}; stories260K logits max |diff| vs reference ${r.logitsMaxDiff.toExponential(2)}`);
  assert.equal(r.backend, 'cuda');
  assert.ok(r.greedyEqual, 'the 64 greedy reference tokens');
  assert.ok(r.logitsMaxDiff < 1e-4, `logits max |diff| ${r.logitsMaxDiff}`);
  assert.deepEqual(r.batchedEqual, [true, true], '4 sequences batched equal each alone (f32 and f16 KV cells)');
  assert.match(r.splitDescription, /^3 of 5 layers on .*; 2 and the output on cuda: /);
  assert.ok(r.splitGreedyEqual, 'gpuLayers 2: the 64 greedy reference tokens');
  assert.equal(r.models.length, 20);
  for (const m of r.models) {
    t.diagnostic(`${m.arch} ${m.type}: decode vs CPU ${m.type} ${m.decodeVsNative.toExponential(2)}, vs f32 weights ${m.decodeVsF32.toExponential(2)}; 40-token prompt vs f32 weights ${m.promptVsF32.toExponential(2)}`);
    const float = m.type === 'F32' || m.type === 'F16';
    // Decode: the float types exactly as the CPU's f32 arithmetic up to summation order; the quantized types on Q8_1
    // activations (the CPU's Q8 rounding; Q8_K for the CPU's K-quants), within the quantized tolerance of the Vulkan
    // tests. Prompts: the tensor-core tiles round F16 and quantized operands to half (~1e-6), F32 runs on the f32 tile.
    if (float) assert.ok(m.decodeVsNative < 1e-9, `${m.arch} ${m.type}: decode nmse ${m.decodeVsNative}`);
    else assert.ok(m.decodeVsNative < 2e-3 && m.decodeVsF32 < 2e-3, `${m.arch} ${m.type}: decode nmse ${m.decodeVsNative} / ${m.decodeVsF32}`);
    assert.ok(m.promptVsF32 < (m.type === 'F32' ? 1e-9 : 5e-6), `${m.arch} ${m.type}: prompt nmse ${m.promptVsF32}`);
  }
  assert.deepEqual(r.vision.map((v) => v.type), ['F32', 'F16']);
  for (const v of r.vision) {
    t.diagnostic(`glm4v ${v.type}: ${v.rows} image rows, nmse vs CPU ${v.nmse.toExponential(2)}; greedy tokens after the image ${v.tokensEqual ? 'equal' : 'differ'}`);
    assert.equal(v.rows, v.wantRows);
    assert.ok(v.nmse < (v.type === 'F32' ? 1e-9 : 5e-6), `glm4v ${v.type}: nmse ${v.nmse}`);
    assert.ok(v.tokensEqual, `glm4v ${v.type}: greedy tokens after the image`);
  }
});

test('backend-ops on the CUDA emulator with each block\'s threads resumed last to first (FAKE_CUDA_ORDER=reverse): no result depends on the order threads run in between barriers', (t) => {
  if (process.platform !== 'linux') return t.skip('the CUDA emulator is built on Linux only');
  if (!existsSync(MODULE)) return t.skip('the CUDA module is not built here (no nvcc at build time)');
  const bin = join(RELEASE, 'backend-ops');
  const env = { ...process.env, OPEN_AUTOGLM_CUDA_LIBRARY: EMULATOR, FAKE_CUDA_DRIVER_VERSION: '13000', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1', FAKE_CUDA_ORDER: 'reverse' };
  const r = spawnSync(bin, ['--module', MODULE, '--json'], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20, env });
  assert.equal(r.error, undefined, `${r.error?.message}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as { passed: number; skipped: number; cases: { name: string; status: string; nmse: number; tolerance: number }[] };
  for (const c of report.cases) assert.equal(c.status, 'ok', `${c.name}: ${c.status} nmse ${c.nmse} (tolerance ${c.tolerance})`);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  assert.ok(report.passed >= 280 && report.skipped === 0);
  t.diagnostic(`${report.passed} cases pass in reverse thread order`);
});

test('backend-ops on the CUDA emulator under AddressSanitizer: no kernel or host code reads or writes outside its device buffers', (t) => {
  if (process.platform !== 'linux') return t.skip('the CUDA emulator is built on Linux only');
  if (!existsSync(MODULE)) return t.skip('the CUDA module is not built here (no nvcc at build time)');
  const lib = join(RELEASE, 'test-cuda-asan', 'libcuda.so.1');
  if (!existsSync(lib)) return t.skip(`${lib} is not built (a compiler without AddressSanitizer)`);
  // The emulator is instrumented, the process is not: the sanitizer's runtime is preloaded.
  const runtime = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  if (!runtime.startsWith('/') || !existsSync(runtime)) return t.skip('no libasan.so to preload (gcc -print-file-name=libasan.so)');
  const env = {
    ...process.env, OPEN_AUTOGLM_CUDA_LIBRARY: lib, FAKE_CUDA_DRIVER_VERSION: '13000', OPEN_AUTOGLM_CUDA_EXPERIMENTAL: '1', LD_PRELOAD: runtime,
    // Leaks are the process's business; the module links libstdc++ statically, whose new/delete the runtime cannot pair.
    ASAN_OPTIONS: 'detect_leaks=0:detect_stack_use_after_return=0:alloc_dealloc_mismatch=0',
  };
  const r = spawnSync(join(RELEASE, 'backend-ops'), ['--module', MODULE, '--json'], { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20, env });
  assert.equal(r.error, undefined, `${r.error?.message}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /AddressSanitizer/, r.stderr.slice(0, 4000));
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const report = JSON.parse(r.stdout) as { passed: number; skipped: number; seconds: number; cases: { name: string; status: string }[] };
  for (const c of report.cases) assert.equal(c.status, 'ok', c.name);
  assert.ok(report.passed >= 280 && report.skipped === 0);
  t.diagnostic(`${report.passed} cases under AddressSanitizer in ${report.seconds.toFixed(1)} s`);
});
