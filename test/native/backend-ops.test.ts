// backend-ops (native/tests/backend-ops.cpp): every IR op, every weight type, odd and non-multiple-of-block widths,
// batches of 1 and 67 tokens over several sequences with prior context in the KV cache, run on a backend module and on
// the built-in CPU backend's reference kernels, compared by normalised mean squared error with a tolerance per op and
// type. Run against the test module (the CPU reference kernels in a separate shared library: proves the harness end to
// end), the built-in CPU backend's best variant (its SIMD kernels; covers the K-quants the test module refuses), the
// harness's own self-checks (a perturbed module must fail every case) and the GPU modules where built (skipped, with
// the reason, where they cannot run: no device, or program_create answering BACKEND_UNAVAILABLE). The Vulkan module
// runs three times: with the optional kernel paths its device has (on an integer-dot device the 32-block quantized
// matmuls quantize activations as the CPU does, so they are held to the sharp tolerance, --sharp-quant), with
// OPEN_AUTOGLM_VULKAN_PLAIN=1 (the plain kernels, f32 activations; matmuls only) and with OPEN_AUTOGLM_VULKAN_PATHS=fp16
// (prompt matmuls on f16 tiles; matmuls only), with the cooperative-matrix tile emulated, and (where
// scripts/vulkan-next.sh has fetched a lavapipe that has VK_KHR_cooperative_matrix) on the KHR cooperative-matrix tile.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { vulkanNextSkipped, vulkanNextRun } from '../helpers/vulkan-next.js';

const REL = join(repoRoot, 'build', 'Release');
const BIN = join(REL, process.platform === 'win32' ? 'backend-ops.exe' : 'backend-ops');
const SUFFIX = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';
const TESTCPU = join(REL, 'test-backends', `aglm-backend-testcpu${SUFFIX}`);
const VULKAN = join(REL, `aglm-backend-vulkan${SUFFIX}`);
const CUDA = join(REL, `aglm-backend-cuda${SUFFIX}`);
const OPS = ['embed', 'rms_norm', 'matmul', 'add', 'mul', 'silu_mul', 'rope', 'attention', 'output_rows', 'layer_norm', 'gelu', 'embed_positions', 'add_vector', 'input', 'embed_interp', 'merge_rows', 'gelu_erf'];
const K_QUANTS = ['Q4_K', 'Q5_K', 'Q6_K'];
// The weight types of the Vulkan integer-dot matmuls (shaders/matmul_dot.comp; the K-quants: matmul_dot_k.comp).
const DOT_TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

interface Case {
  name: string;
  op: string;
  type: string;
  shape: string;
  batch: number;
  status: 'ok' | 'fail' | 'skip' | 'error';
  ok: boolean;
  nmse: number;
  tolerance: number;
  maxAbsDiff: number;
  refZero: boolean;
  exactNmse?: number;
  moduleExactNmse?: number;
  seconds: number;
  message?: string;
}
interface Report {
  module: string;
  backend?: string;
  device?: string;
  deviceDescription?: string;
  score?: number;
  scoreWhy?: string;
  unavailable: { stage: string; reason: string } | null;
  cases: Case[];
  passed?: number;
  failed?: number;
  skipped?: number;
  seconds?: number;
}

// wrap: a program that runs backend-ops (scripts/vulkan-next.sh's bin/run: on the newer lavapipe).
function run(args: string[], env: Record<string, string> = {}, wrap?: string): { code: number | null; report: Report; raw: string } {
  // A module that hangs (a device wait that never returns) fails the test instead of stalling the suite.
  const [cmd, argv] = wrap ? [wrap, [BIN, ...args, '--json']] : [BIN, [...args, '--json']];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  const raw = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.ok(r.error === undefined, `backend-ops ${args.join(' ')}: ${r.error?.message}\n${raw.slice(-2000)}`);
  return { code: r.status, report: JSON.parse(r.stdout) as Report, raw };
}

// One diagnostic line per op (and weight type for matmul and embed): cases, max NMSE, tolerance.
function summarise(t: TestContext, r: Report) {
  t.diagnostic(`${r.backend} on ${r.device}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${r.seconds?.toFixed(1)} s`);
  const groups = new Map<string, { n: number; skipped: number; max: number; tol: number; exact: number }>();
  for (const c of r.cases) {
    const key = c.op === 'matmul' || c.op === 'embed' ? `${c.op} ${c.type}` : c.op === 'attention' ? `attention ${/kv=f16/.test(c.shape) ? 'f16' : 'f32'} KV` : c.op;
    const g = groups.get(key) ?? { n: 0, skipped: 0, max: 0, tol: c.tolerance, exact: 0 };
    g.n++;
    if (c.status === 'skip') g.skipped++;
    else g.max = Math.max(g.max, c.nmse);
    g.exact = Math.max(g.exact, c.exactNmse ?? 0);
    groups.set(key, g);
  }
  for (const [key, g] of groups)
    t.diagnostic(`${key}: ${g.n} cases${g.skipped ? ` (${g.skipped} skipped)` : ''}, max nmse ${g.max.toExponential(2)} (tolerance ${g.tol})${g.exact ? `, reference vs f32-activation product ${g.exact.toExponential(2)}` : ''}`);
}

function assertAllOk(r: Report) {
  for (const c of r.cases) assert.ok(c.status === 'ok' || c.status === 'skip', `${c.name}: ${c.status} nmse ${c.nmse} (tolerance ${c.tolerance})${c.message ? `: ${c.message}` : ''}`);
}

const built = existsSync(BIN) && existsSync(TESTCPU);
const notBuilt = 'backend-ops or the test modules are not built (npm run build:native)';

test('backend-ops --list: every op of enum aglm_op_kind, every weight type for matmul and embed, batches of 1 and 67', { skip: !built && notBuilt }, () => {
  const r = spawnSync(BIN, ['--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const names = r.stdout.trim().split('\n').slice(0, -1).map((l) => l.split(/\s+/)[0]);
  const ops = new Set(names.map((n) => n.split('/')[0]));
  assert.deepEqual([...ops].sort(), [...OPS].sort());
  for (const op of ['matmul', 'embed'])
    for (const type of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', ...K_QUANTS])
      for (const b of ['b1', 'b67']) assert.ok(names.some((n) => n.startsWith(`${op}/${type}/`) && n.endsWith(`/${b}`)), `${op} ${type} ${b}`);
  for (const shape of ['mode=0,', 'mode=2,', 'mode=8,', 'mode=24,', 'yarn', 'freq-factors']) assert.ok(names.some((n) => n.startsWith('rope/') && n.includes(shape)), shape);
  for (const shape of ['non-causal', 'nh=8,nkv=2', 'window=', 'kv=f16', 'kv=f32']) assert.ok(names.some((n) => n.startsWith('attention/') && n.includes(shape)), shape);
  assert.ok(names.some((n) => n.includes('m=70001')), 'a matmul with more than 65535 output rows');
  assert.ok(names.some((n) => n.startsWith('embed/') && n.includes('input-rows')), 'embed with input rows');
  assert.match(r.stdout, /^\d+ cases$/m);
});

test('backend-ops: the test module (CPU reference kernels in a module) equals the reference on every case it supports', { skip: !built && notBuilt }, (t) => {
  const { code, report, raw } = run(['--module', TESTCPU]);
  summarise(t, report);
  assert.equal(report.unavailable, null);
  assertAllOk(report);
  assert.equal(code, 0, raw.slice(-2000));
  // The test module refuses K-quant weights (supports() says so): exactly those cases are skipped.
  for (const c of report.cases) assert.equal(c.status === 'skip', K_QUANTS.includes(c.type), `${c.name}: ${c.status}`);
  assert.ok(report.passed! >= 200, `${report.passed} cases ran`);
  // The same kernels on both sides: nothing but identical results.
  for (const c of report.cases) if (c.status === 'ok') assert.equal(c.nmse, 0, c.name);
  // The quantized-matmul tolerance is meaningful: a GPU multiplying exact f32 activations sits 10x below it.
  for (const c of report.cases) if (c.exactNmse !== undefined) assert.ok(c.exactNmse < c.tolerance / 10, `${c.name}: f32-activation product nmse ${c.exactNmse} vs tolerance ${c.tolerance}`);
});

test('backend-ops: the built-in CPU backend\'s best variant (SIMD kernels) against its reference kernels, K-quants included', { skip: !built && notBuilt }, (t) => {
  const { code, report, raw } = run(['--module', 'cpu']);
  summarise(t, report);
  assertAllOk(report);
  assert.equal(code, 0, raw.slice(-2000));
  assert.equal(report.skipped, 0);
});

test('backend-ops can fail: a module with inputs 5% off, or outputs 2 sqrt(tolerance) off, fails every case', { skip: !built && notBuilt }, (t) => {
  for (const mode of ['input', 'output']) {
    const { code, report } = run(['--module', TESTCPU, `--self-check-fail=${mode}`]);
    assert.equal(code, 1, `--self-check-fail=${mode} must exit 1`);
    const ran = report.cases.filter((c) => c.status !== 'skip');
    assert.ok(ran.length >= 200);
    for (const c of ran) assert.equal(c.status, 'fail', `--self-check-fail=${mode}: ${c.name} nmse ${c.nmse} (tolerance ${c.tolerance})`);
    const margin = Math.min(...ran.map((c) => c.nmse / c.tolerance));
    t.diagnostic(`--self-check-fail=${mode}: ${ran.length} of ${ran.length} cases fail; the smallest nmse / tolerance is ${margin.toFixed(1)}`);
  }
});

// The GPU modules, each where it is built: the Vulkan module (lavapipe in CI) and the CUDA module.
for (const [name, file, missing] of [
  ['Vulkan', VULKAN, 'the Vulkan backend is not built here (glslc or the Vulkan headers are missing at build time)'],
  ['CUDA', CUDA, 'the CUDA backend is not built here (no nvcc at build time)'],
] as const) {
  test(`backend-ops: the ${name} module against the CPU reference (skipped where it cannot run, saying why)`, { skip: !existsSync(BIN) && notBuilt }, (t) => {
    if (!existsSync(file)) return t.skip(missing);
    // The Vulkan device's kernel paths (its description, from one small case): with integer dot products, the
    // quantized matmuls (32-block types and K-quants) must equal the CPU's to the sharp tolerance; not with
    // cooperative matrices, which take the prompts (f16 tiles) before the integer-dot path.
    let extra: string[] = [];
    if (name === 'Vulkan') {
      const probe = run(['--module', file, '--op', 'matmul', '--filter', 'matmul/F32/k=1,m=37/b1']);
      const paths = /kernel paths: (.*)$/.exec(probe.report.deviceDescription ?? '')?.[1] ?? '';
      if (probe.code === 0 && paths.includes('integer dot') && !paths.includes('cooperative matrix')) extra = ['--sharp-quant', DOT_TYPES.join(',')];
      t.diagnostic(`device: ${probe.report.deviceDescription}`);
    }
    const { code, report, raw } = run(['--module', file, ...extra]);
    if (code === 77) {
      assert.ok(report.unavailable, raw.slice(-2000));
      // No device, or a backend that does not run programs yet (program_create: BACKEND_UNAVAILABLE).
      return t.skip(`the ${name} backend cannot run here (${report.unavailable.stage}): ${report.unavailable.reason}`);
    }
    summarise(t, report);
    t.diagnostic(`score ${report.score}: ${report.scoreWhy}`);
    assertAllOk(report);
    assert.equal(code, 0, raw.slice(-2000));
    assert.ok(report.passed! >= 1, 'no case ran');
    if (extra.length)
      for (const c of report.cases) if (c.op === 'matmul' && DOT_TYPES.includes(c.type)) assert.ok(c.tolerance <= 1e-10, `${c.name}: tolerance ${c.tolerance}`);
  });
}

test('backend-ops: the Vulkan module on the newer lavapipe (scripts/vulkan-next.sh: Mesa 26, Vulkan 1.4, KHR cooperative matrices) against the CPU reference, every op', { skip: !existsSync(BIN) && notBuilt }, (t) => {
  if (!existsSync(VULKAN)) return t.skip('the Vulkan backend is not built here');
  if (vulkanNextSkipped(t)) return;
  const { code, report, raw } = run(['--module', VULKAN], {}, vulkanNextRun);
  if (code === 77) return void vulkanNextSkipped(t, `the Vulkan backend cannot run there (${report.unavailable?.stage}): ${report.unavailable?.reason}`);
  t.diagnostic(`device: ${report.deviceDescription}`);
  summarise(t, report);
  assertAllOk(report);
  assert.equal(code, 0, raw.slice(-2000));
  assert.equal(new Set(report.cases.map((c) => c.op)).size, OPS.length, 'every op ran');
});

test('backend-ops: the Vulkan module with OPEN_AUTOGLM_VULKAN_PLAIN=1 (plain kernels only) against the CPU reference, matmuls', { skip: !existsSync(BIN) && notBuilt }, (t) => {
  if (!existsSync(VULKAN)) return t.skip('the Vulkan backend is not built here');
  const { code, report, raw } = run(['--module', VULKAN, '--op', 'matmul'], { OPEN_AUTOGLM_VULKAN_PLAIN: '1' });
  if (code === 77) return t.skip(`the Vulkan backend cannot run here (${report.unavailable?.stage}): ${report.unavailable?.reason}`);
  summarise(t, report);
  assert.match(report.deviceDescription ?? '', /kernel paths: plain/);
  assertAllOk(report);
  assert.equal(code, 0, raw.slice(-2000));
  // The plain path multiplies f32 activations: its quantized matmuls differ from the CPU's by the activation
  // quantization (~1e-5), never by the integer-dot path's ~1e-13, which would mean the variable was not honoured.
  for (const c of report.cases) if (c.op === 'matmul' && DOT_TYPES.includes(c.type)) assert.ok(c.nmse > 1e-9, `${c.name}: nmse ${c.nmse}`);
});

// The f16 prompt tiles: the fp16 path alone (no integer dot); the cooperative-matrix tile with its operations emulated
// (16 x 16 x 16 products, subgroups of 32: the layout NVIDIA GPUs get); and the KHR cooperative-matrix tile on a
// lavapipe that has VK_KHR_cooperative_matrix (Mesa 24.2+, from scripts/vulkan-next.sh: 8 x 8 x 8 products, subgroups
// of 8). Cooperative matrices take prompts before the integer-dot path, so the quantized types' prompts land on them.
for (const [label, env, paths, wrap] of [
  ['OPEN_AUTOGLM_VULKAN_PATHS=fp16 (prompt matmuls on f16 tiles)', { OPEN_AUTOGLM_VULKAN_PATHS: 'fp16' }, /kernel paths: fp16$/, false],
  ['OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE=1 (prompt matmuls on the cooperative-matrix tile, emulated)', { OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE: '1' }, /kernel paths: .*cooperative matrix \(emulated\)$/, false],
  ['VK_KHR_cooperative_matrix on the newer lavapipe (prompt matmuls on the KHR cooperative-matrix tile)', {}, /cooperative matrix \(KHR \d+x\d+x\d+\); kernel paths: .*cooperative matrix$/, true],
] as const) {
  test(`backend-ops: the Vulkan module with ${label} against the CPU reference and a double product`, { skip: !existsSync(BIN) && notBuilt }, (t) => {
    if (!existsSync(VULKAN)) return t.skip('the Vulkan backend is not built here');
    if (wrap && vulkanNextSkipped(t)) return;
    const { code, report, raw } = run(['--module', VULKAN, '--op', 'matmul'], env, wrap ? vulkanNextRun : undefined);
    const unavailable = `the Vulkan backend cannot run here (${report.unavailable?.stage}): ${report.unavailable?.reason}`;
    if (code === 77) return wrap ? void vulkanNextSkipped(t, unavailable) : t.skip(unavailable);
    t.diagnostic(`device: ${report.deviceDescription}`);
    if (!/kernel paths: .*fp16/.test(report.deviceDescription ?? '')) return t.skip(`the device has no shaderFloat16: ${report.deviceDescription}`);
    assert.match(report.deviceDescription ?? '', paths);
    summarise(t, report);
    assertAllOk(report);
    assert.equal(code, 0, raw.slice(-2000));
    // The tiles take prompts (67 tokens) with k a multiple of 32 and every weight type but F32 and BF16; decode (1
    // token) stays on the f32 or integer-dot path. Against a double product of the same weights with f32 activations,
    // a tile's error is the rounding of its operands to f16 (~1e-7: the precision cost of the path, 100x below the
    // CPU's own Q8 activations), never the f32 path's ~1e-12 (the variable not honoured) and never ~1e-5 (int8
    // activations: the integer-dot path, where a tile failed its self-check at device open and was turned off).
    const tiled = report.cases.filter((c) => c.op === 'matmul' && c.batch === 67 && !['F32', 'BF16'].includes(c.type) && Number(/k=(\d+)/.exec(c.shape)![1]) % 32 === 0);
    assert.ok(tiled.length >= 26, `${tiled.length} tiled cases`); // F16 k=256, 3 widths of each quantized type, m=70001
    let worst = 0;
    for (const c of tiled) {
      assert.ok(c.moduleExactNmse! > 1e-10 && c.moduleExactNmse! < 1e-6, `${c.name}: module vs double product ${c.moduleExactNmse}`);
      worst = Math.max(worst, c.moduleExactNmse!);
    }
    for (const c of report.cases)
      if (c.op === 'matmul' && c.batch === 1 && !DOT_TYPES.includes(c.type)) assert.ok(c.moduleExactNmse! < 1e-10, `${c.name}: decode vs double product ${c.moduleExactNmse}`);
    t.diagnostic(`${tiled.length} prompt cases on the tiles, worst NMSE against the double product ${worst.toExponential(2)}`);
  });
}
