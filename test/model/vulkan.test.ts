// Models on the Vulkan backend (aglm-backend-vulkan, beside the addon in build/Release), run in CI on lavapipe (mesa's
// Vulkan on the CPU, asked for by name): stories260K gives the 64 greedy reference tokens and logits within 1e-4 of
// llama.cpp's; random-weight models of every architecture (llama with rope variants, qwen2, chatglm, glm4, bert, the
// glm4v vision tower) in F32, F16, Q8_0, Q4_0 and Q4_K agree with the CPU backend on the same file (sharply with the
// CPU on the file's type where the device's integer-dot path quantizes activations as the CPU does, else with the CPU
// on the weights in f32; OPEN_AUTOGLM_VULKAN_PLAIN=1 forces the latter); 8 sequences
// batched give each exactly what it gives alone; an abort during a long prompt lands between submissions. Skips,
// saying why, where the backend is not built or no Vulkan device exists.
import { before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType, loadModel, readGguf, systemInfo, type LoadModelOptions, type Model } from '../../lib/index.js';
import { writeRandomModel, writeRandomLlamaModel, type LlamaShape, type RandomArchOptions } from '../../lib/tools/random-model.js';
import { writeRandomBertModel } from '../../lib/tools/random-bert.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { defaultModelPath, greedyReference, logitsReference, maxAbsDiff, repoRoot, tempDir } from '../helpers/fixtures.js';
import { testPixels, writeVisionPair } from '../helpers/vision.js';
import { vulkanNextSkipped, vulkanNextRun } from '../helpers/vulkan-next.js';

const suffix = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';
const modulePath = join(repoRoot, 'build', 'Release', `aglm-backend-vulkan${suffix}`);

let skip: string | false = false;
before(() => {
  if (!existsSync(modulePath)) return void (skip = 'the Vulkan backend is not built here (glslc or the Vulkan headers were missing at build time)');
  const vk = systemInfo().backends.find((b) => b.name === 'vulkan');
  if (!vk) skip = 'the Vulkan module was not found';
  else if (vk.state !== 'ready') skip = `no usable Vulkan device: ${vk.reason}`;
});

/** Normalised mean squared error, sum (a - b)^2 / sum b^2 (llama.cpp's test-backend-ops measure). */
function nmse(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] * b[i];
  }
  return num / den;
}

async function logits(model: Model, tokens: number[], batchSize = 5): Promise<Float32Array> {
  await using ctx = model.createContext({ contextSize: 64, batchSize });
  return await ctx.evaluate(tokens, { logits: 'all' });
}

/** The logits of `tokens` from the file loaded with `options`, the model disposed after. */
async function logitsOf(path: string, options: LoadModelOptions, tokens: number[], batchSize?: number): Promise<Float32Array> {
  await using model = await loadModel(path, options);
  return await logits(model, tokens, batchSize);
}

test('stories260K on Vulkan: the 64 greedy reference tokens, and logits within 1e-4 of the reference (one batch, token by token, uneven batches)', async (t) => {
  if (skip) return t.skip(skip);
  await using model = await loadModel(defaultModelPath, { backend: 'vulkan' });
  assert.equal(model.backend.backend, 'vulkan');
  assert.match(model.backend.description, /^vulkan: /);
  t.diagnostic(model.backend.description);
  const ref = greedyReference();
  const r = await model.complete(ref.prompt, { maxTokens: 64, temperature: 0 });
  assert.deepEqual(r.tokens, ref.generatedTokens);
  assert.equal(ref.prompt + r.text, ref.text);
  const lr = logitsReference();
  await using ctx = model.createContext({ contextSize: 128 });
  const all = await ctx.evaluate(lr.tokens, { logits: 'all' });
  const d1 = maxAbsDiff(all, lr.logits);
  await using one = model.createContext({ contextSize: 128 });
  let d2 = 0;
  for (let i = 0; i < 20; i++) {
    const row = await one.evaluate([lr.tokens[i]], { logits: 'last' });
    d2 = Math.max(d2, maxAbsDiff(row, lr.logits.subarray(i * lr.nVocab, (i + 1) * lr.nVocab)));
  }
  await using uneven = model.createContext({ contextSize: 69, batchSize: 7 });
  let d3 = 0;
  const cuts = [0, 1, 13, 14, 40, 69];
  for (let c = 0; c + 1 < cuts.length; c++) {
    const rows = await uneven.evaluate(lr.tokens.slice(cuts[c], cuts[c + 1]), { logits: 'all' });
    d3 = Math.max(d3, maxAbsDiff(rows, lr.logits.subarray(cuts[c] * lr.nVocab, cuts[c + 1] * lr.nVocab)));
  }
  t.diagnostic(`max |diff| vs reference: one batch ${d1.toExponential(2)}, token by token ${d2.toExponential(2)}, batches of 7 ${d3.toExponential(2)}`);
  for (const d of [d1, d2, d3]) assert.ok(d < 1e-4, `max |diff| ${d}`);
});

// Logits NMSE on the same file, Vulkan vs the CPU backend's reference kernels (the specification). The plain Vulkan
// kernels multiply f32 activations by the dequantized weights, exactly what the CPU computes from the same weights
// converted to F32 at load (precision 'f32'): that comparison is sharp for every type (only the summation order
// differs; measured ~1e-12). Against the CPU on the file's own type, quantized weights differ by the CPU's Q8 rounding
// of the activations (llama.cpp's pairing; measured 1e-6..3e-4 on these random 2-layer models, whose logits amplify
// it). On a device with the integer-dot path (the program description says "integer dot"), the quantized types
// (DOT_TYPES: the 32-block types and the K-quants) quantize the activations as the CPU does: the sharp comparison is then against the CPU on the file's own
// type, and the loose one against the f32 weights.
const TOL_SAME_WEIGHTS = 1e-9;
const DOT_TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];
const TOL: Record<string, number> = { F32: 1e-9, F16: 1e-9, Q8_0: 2e-3, Q4_0: 2e-3, Q4_K: 2e-3 };
/**
 * Whether a Vulkan model's prompt matmuls (more than 8 tokens, k a multiple of 32) of F16 and quantized weights run on
 * f16 tiles (the fp16 or cooperative-matrix path, where the device has it): their operands are rounded to f16.
 */
const f16Tiles = (m: Model) => /paths: [^;(]*(fp16|cooperative matrix)/.test(m.backend.description);
/** The stated tolerance for F16 weights on f16 tiles: activations rounded to f16 (measured 2e-8 bert, 6e-7 glm4v). */
const TOL_F16_TILES = 5e-6;
const TYPES: [string, number][] = [['F32', GgmlType.F32], ['F16', GgmlType.F16], ['Q8_0', GgmlType.Q8_0], ['Q4_0', GgmlType.Q4_0], ['Q4_K', GgmlType.Q4_K]];
// Widths are multiples of 256 so that Q4_K (256-value blocks) applies to every matrix.
const SHAPE: LlamaShape = { embeddingLength: 256, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 512, vocabSize: 320, contextLength: 256 };
const ARCHS: { name: string; options: RandomArchOptions }[] = [
  { name: 'llama rope_freqs', options: { arch: 'llama', ropeFreqs: true } },
  { name: 'llama YaRN', options: { arch: 'llama', ropeScaling: { type: 'yarn', factor: 4, originalContextLength: 16 } } },
  { name: 'qwen2', options: { arch: 'qwen2' } },
  { name: 'chatglm', options: { arch: 'chatglm' } },
  { name: 'glm4', options: { arch: 'glm4' } },
];

test('random-weight llama, qwen2, chatglm and glm4 models in F32, F16, Q8_0, Q4_0 and Q4_K: Vulkan agrees with the CPU backend', async (t) => {
  if (skip) return t.skip(skip);
  const dir = tempDir(t, 'aglm-vk-arch-');
  const tokens = benchTokens(12, SHAPE.vocabSize, 1, 3);
  for (const a of ARCHS) {
    for (const [typeName, type] of TYPES) {
      const path = join(dir, `${a.name.replace(/\W+/g, '-')}-${typeName}.gguf`);
      await writeRandomModel(path, SHAPE, { ...a.options, type, seed: 5 });
      await using vk = await loadModel(path, { backend: 'vulkan' });
      const got = await logits(vk, tokens);
      const f32 = nmse(got, await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, tokens));
      const e = nmse(got, await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref' }, tokens));
      const dot = DOT_TYPES.includes(typeName) && /paths: [^(]*integer dot/.test(vk.backend.description);
      t.diagnostic(`${a.name} ${typeName}${dot ? ' (integer dot)' : ''}: logits nmse vs CPU on the same f32 weights ${f32.toExponential(2)}; vs CPU ${typeName} ${e.toExponential(2)}`);
      const [sharp, loose, sharpWhat] = dot ? [e, f32, `CPU ${typeName}`] : [f32, e, 'the same weights in f32'];
      assert.ok(sharp < TOL_SAME_WEIGHTS, `${a.name} ${typeName}: nmse vs ${sharpWhat} ${sharp}`);
      assert.ok(loose < TOL[typeName], `${a.name} ${typeName}: nmse ${loose} (tolerance ${TOL[typeName]})`);
      // Both comparisons mean something: for a quantized type they are far apart (the activation quantization).
      if (typeName !== 'F32' && typeName !== 'F16') assert.ok(loose > 100 * sharp, `${a.name} ${typeName}: ${loose} vs ${sharp}`);
    }
  }
});

/**
 * The f16 tiles' check: 40-token prompts of glm4 F16, Q4_0 and Q4_K files (written into `dir` once) on Vulkan, run by
 * `vulkan` (which returns the model's description and logits), agree with the CPU on the same weights in f32 within
 * the stated tolerance, and the description matches `described` (the path in use, its self-check passed).
 */
async function checkTilePrompts(t: TestContext, dir: string, label: string, described: RegExp, vulkan: (file: string, tokens: number[]) => Promise<{ description: string; logits: Float32Array }>) {
  const tokens = benchTokens(40, SHAPE.vocabSize, 1, 7);
  for (const [typeName, type] of TYPES.filter(([n]) => ['F16', 'Q4_0', 'Q4_K'].includes(n))) {
    const file = join(dir, `glm4-${typeName}.gguf`);
    if (!existsSync(file)) await writeRandomModel(file, SHAPE, { arch: 'glm4', type, seed: 9 });
    const want = await logitsOf(file, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, tokens, 64);
    const got = await vulkan(file, tokens);
    assert.match(got.description, described);
    const e = nmse(got.logits, want);
    t.diagnostic(`${label} ${typeName}: logits nmse vs CPU on the same f32 weights ${e.toExponential(2)}`);
    // Above the f32 path's ~1e-12 (the tiles ran), below the stated tolerance of f16 operands.
    assert.ok(e > 1e-10 && e < TOL_F16_TILES, `${label} ${typeName}: nmse ${e}`);
  }
}

test('f16 prompt tiles (the fp16 path, and the cooperative-matrix tile emulated): 40-token prompts of F16, Q4_0 and Q4_K models agree with the CPU on the same weights in f32 within the stated tolerance, after the tiles pass their self-check', async (t) => {
  if (skip) return t.skip(skip);
  const dir = tempDir(t, 'aglm-vk-tiles-');
  for (const [label, env, described] of [
    ['fp16', { OPEN_AUTOGLM_VULKAN_PATHS: 'subgroup,fp16' }, /paths: subgroup, fp16; fp16 tiles passed their self-check/],
    ['cooperative matrix (emulated)', { OPEN_AUTOGLM_VULKAN_COOPMAT_EMULATE: '1' }, /cooperative matrix \(emulated\).*cooperative-matrix \(emulated\) tiles passed their self-check/],
  ] as const) {
    await checkTilePrompts(t, dir, label, described, (file, tokens) =>
      withEnv(env, async () => {
        await using vk = await loadModel(file, { backend: 'vulkan' });
        return { description: vk.backend.description, logits: await logits(vk, tokens, 64) };
      }));
  }
});

test('KHR cooperative matrices (VK_KHR_cooperative_matrix on the newer lavapipe: 8 x 8 x 8 products, subgroups of 8): 40-token prompts of F16, Q4_0 and Q4_K models agree with the CPU on the same weights in f32 within the stated tolerance, after the tiles pass their self-check', async (t) => {
  if (skip) return t.skip(skip);
  if (vulkanNextSkipped(t)) return;
  const described = /paths: [^;]*cooperative matrix[^;]*;.*cooperative-matrix \(KHR, \d+x\d+x\d+, \d+x\d+ per subgroup\) tiles passed their self-check/;
  // The model runs in a child process on the newer lavapipe (this process has loaded the system's Vulkan loader).
  await checkTilePrompts(t, tempDir(t, 'aglm-vk-khr-'), 'KHR cooperative matrix', described, async (file, tokens) => {
    const r = spawnSync(vulkanNextRun, [process.execPath, '--import', 'tsx', join(repoRoot, 'test', 'helpers', 'vulkan-logits.ts'), file, JSON.stringify(tokens), '64'], {
      encoding: 'utf8', cwd: repoRoot, timeout: 240_000, maxBuffer: 64 << 20,
    });
    assert.equal(r.status, 0, `${r.error?.message ?? ''}${r.stderr}`.slice(-2000));
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { description: string; logits: string };
    const buf = Buffer.from(out.logits, 'base64');
    return { description: out.description, logits: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  });
});

test('OPEN_AUTOGLM_VULKAN_PLAIN=1 forces the plain kernels: a Q4_0 model then equals the CPU on its weights in f32, not on Q4_0', async (t) => {
  if (skip) return t.skip(skip);
  const path = join(tempDir(t, 'aglm-vk-plain-'), 'q4_0.gguf');
  await writeRandomModel(path, SHAPE, { arch: 'llama', type: GgmlType.Q4_0, seed: 5 });
  const tokens = benchTokens(12, SHAPE.vocabSize, 1, 3);
  const f32 = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, tokens);
  const native = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref' }, tokens);
  // Read when a program opens its device: set for this load only.
  const got = await withEnv({ OPEN_AUTOGLM_VULKAN_PLAIN: '1' }, async () => {
    await using vk = await loadModel(path, { backend: 'vulkan' });
    t.diagnostic(vk.backend.description);
    assert.match(vk.backend.description, /paths: plain/);
    return await logits(vk, tokens); // awaited before the model is disposed
  });
  const [sharp, loose] = [nmse(got, f32), nmse(got, native)];
  t.diagnostic(`plain Q4_0: logits nmse vs CPU on the same f32 weights ${sharp.toExponential(2)}; vs CPU Q4_0 ${loose.toExponential(2)}`);
  assert.ok(sharp < TOL_SAME_WEIGHTS, `nmse vs the same weights in f32 ${sharp}`);
  assert.ok(loose < TOL.Q4_0 && loose > 100 * sharp, `nmse vs CPU Q4_0 ${loose}`);
});

test('a random-weight bert encoder (F32, F16, Q8_0 by load-time conversion): Vulkan embeddings agree with the CPU backend', async (t) => {
  if (skip) return t.skip(skip);
  const path = join(tempDir(t, 'aglm-vk-bert-'), 'bert.gguf');
  const vocab = (await readGguf(join(repoRoot, 'test', 'fixtures', 'tokenizer', 'ggml-vocab-bert-bge.gguf'))).metadata;
  await writeRandomBertModel(path, { embeddingLength: 64, blockCount: 2, headCount: 4, feedForwardLength: 128, contextLength: 64 }, { vocab, poolingType: 1, seed: 7 });
  for (const [typeName, precision] of [['F32', 'f32'], ['F16', 'f16'], ['Q8_0', 'q8_0']] as const) {
    await using cpu = await loadModel(path, { backend: 'cpu', cpuVariant: 'ref', precision });
    await using vk = await loadModel(path, { backend: 'vulkan', precision });
    const texts = ['hello world', 'a second, longer sentence about nothing', 'x'];
    const want = await cpu.embed(texts);
    const got = await vk.embed(texts);
    const tiles = typeName === 'F16' && f16Tiles(vk);
    for (let i = 0; i < texts.length; i++) {
      const e = nmse(got[i], want[i]);
      t.diagnostic(`bert ${typeName}${tiles ? ' (f16 tiles)' : ''} "${texts[i]}": nmse ${e.toExponential(2)}`);
      assert.ok(e < (tiles ? TOL_F16_TILES : TOL[typeName]), `bert ${typeName}: nmse ${e}`);
    }
    if (tiles) {
      // Without the f16 tiles (OPEN_AUTOGLM_VULKAN_PATHS naming the other paths), F16 is held to the sharp tolerance:
      // the looser one above covers the f16 rounding of the tiles and nothing else.
      const sharp = await withEnv({ OPEN_AUTOGLM_VULKAN_PATHS: 'subgroup,integer-dot' }, async () => {
        await using f32Tiles = await loadModel(path, { backend: 'vulkan', precision });
        assert.ok(!f16Tiles(f32Tiles), f32Tiles.backend.description);
        return await f32Tiles.embed(texts);
      });
      for (let i = 0; i < texts.length; i++) {
        const e = nmse(sharp[i], want[i]);
        t.diagnostic(`bert F16 without f16 tiles "${texts[i]}": nmse ${e.toExponential(2)}`);
        assert.ok(e < TOL.F16, `bert F16 without f16 tiles: nmse ${e}`);
      }
    }
  }
});

/** Runs fn with environment variables set (read by the Vulkan module when a model loads), then restores them. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

test('the glm4v vision tower (F32, F16): Vulkan image rows agree with the CPU backend, and greedy tokens after the image are equal', async (t) => {
  if (skip) return t.skip(skip);
  const dir = tempDir(t, 'aglm-vk-vision-');
  for (const [typeName, type] of TYPES.slice(0, 2)) {
    const pair = await writeVisionPair(dir, typeName, { type, convType: type, seed: 3 });
    await using cpu = await loadModel(pair.text, { backend: 'cpu', cpuVariant: 'ref', projector: pair.projector });
    await using vk = await loadModel(pair.text, { backend: 'vulkan', projector: pair.projector });
    const image = { width: 112, height: 84, data: testPixels(112, 84, 'screen', 2) };
    const want = await cpu.encodeImage(image);
    const got = await vk.encodeImage(image);
    assert.deepEqual([got.nx, got.ny, got.nTokens], [want.nx, want.ny, want.nTokens]);
    const e = nmse(got.data, want.data);
    const tiles = typeName === 'F16' && f16Tiles(vk);
    t.diagnostic(`glm4v ${typeName}${tiles ? ' (f16 tiles)' : ''}: ${got.nTokens} image rows, nmse ${e.toExponential(2)}`);
    assert.ok(e < (tiles ? TOL_F16_TILES : 1e-9), `glm4v ${typeName}: nmse ${e}`);
    const prompt = [{ type: 'image' as const, image }, { type: 'text' as const, text: 'describe' }];
    const a = await cpu.complete(prompt, { maxTokens: 12, temperature: 0 });
    const b = await vk.complete(prompt, { maxTokens: 12, temperature: 0 });
    assert.deepEqual(b.tokens, a.tokens);
  }
});

test('8 sequences generating at once on Vulkan give each exactly its tokens alone (stories260K), with F16 KV cells too', async (t) => {
  if (skip) return t.skip(skip);
  await using model = await loadModel(defaultModelPath, { backend: 'vulkan' });
  const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a big', 'Tom and Sue went to the park', 'There was a girl who liked', 'The sun was', 'A cat sat'];
  for (const kvType of ['f32', 'f16'] as const) {
    const opts = { maxTokens: 48, temperature: 0 };
    const alone = [];
    for (const p of prompts) {
      await using ctx = model.createContext({ contextSize: 96, kvType });
      alone.push(await ctx.createSequence().complete(p, opts));
    }
    await using ctx = model.createContext({ contextSize: prompts.length * 96, sequences: prompts.length, kvType });
    const batched = await Promise.all(prompts.map((p) => ctx.createSequence().complete(p, opts)));
    for (let i = 0; i < prompts.length; i++) assert.deepEqual(batched[i].tokens, alone[i].tokens, `${kvType} sequence ${i}`);
  }
});

test('Vulkan: an abort during a long prompt rejects promptly, and the context goes on', async (t) => {
  if (skip) return t.skip(skip);
  const path = join(tempDir(t, 'aglm-vk-abort-'), 'abort.gguf');
  await writeRandomLlamaModel(path, { embeddingLength: 256, blockCount: 4, headCount: 4, headCountKv: 2, feedForwardLength: 512, vocabSize: 512, contextLength: 2048 });
  await using model = await loadModel(path, { backend: 'vulkan' });
  await using ctx = model.createContext({ contextSize: 1100, batchSize: 512 });
  const seq = ctx.createSequence();
  const controller = new AbortController();
  const prompt = Array.from({ length: 1024 }, (_, i) => 3 + ((i * 7919) % 500));
  const pending = seq.evaluate(prompt, { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 200));
  const at = performance.now();
  controller.abort(new Error('stop'));
  await assert.rejects(pending, { code: 'ABORTED' });
  const latency = performance.now() - at;
  // lavapipe runs each of a 512-token batch's ~32 submissions in ~0.1-0.5 s on 2 cores; a GPU in well under 1 ms.
  t.diagnostic(`abort latency ${latency.toFixed(1)} ms`);
  assert.ok(latency < 2500, `rejected ${latency.toFixed(1)} ms after the abort`);
  assert.equal(seq.position, 0);
  const r = await seq.complete([1, 5, 9], { maxTokens: 8, temperature: 0 });
  assert.equal(r.tokens.length, 8);
});

test('gpuLayers: half the layers on Vulkan and half on the CPU agree with all on the CPU; 0 and all; an invalid value is a typed error', async (t) => {
  if (skip) return t.skip(skip);
  const path = join(tempDir(t, 'aglm-vk-split-'), 'split.gguf');
  await writeRandomModel(path, { ...SHAPE, blockCount: 4 }, { arch: 'llama', type: GgmlType.Q8_0, seed: 11 });
  const tokens = benchTokens(12, SHAPE.vocabSize, 1, 3);
  const cpuLogits = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, tokens);
  for (const gpuLayers of [0, 2, 4]) {
    await using m = await loadModel(path, { backend: 'vulkan', gpuLayers, cpuVariant: 'ref', precision: 'f32' });
    assert.equal(m.backend.layers, 4);
    assert.equal(m.backend.gpuLayers, gpuLayers);
    assert.equal(m.backend.backend, gpuLayers === 0 ? 'cpu' : 'vulkan');
    if (gpuLayers === 2) assert.match(m.backend.description, /^2 of 4 layers on ref.*; 2 and the output on vulkan: /);
    const got = await logits(m, tokens);
    const e = nmse(got, cpuLogits);
    t.diagnostic(`gpuLayers ${gpuLayers}: logits nmse vs all-CPU ${e.toExponential(2)}`);
    assert.ok(e < TOL_SAME_WEIGHTS, `gpuLayers ${gpuLayers}: nmse ${e}`);
  }
  // A split model generates as the whole one does (stories260K: 5 layers, 2 on the GPU), also 8 sequences batched.
  const ref = greedyReference();
  await using split = await loadModel(defaultModelPath, { backend: 'vulkan', gpuLayers: 2 });
  assert.deepEqual((await split.complete(ref.prompt, { maxTokens: 64, temperature: 0 })).tokens, ref.generatedTokens);
  await using ctx = split.createContext({ contextSize: 4 * 96, sequences: 4 });
  const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to', 'A cat sat'];
  const batched = await Promise.all(prompts.map((p) => ctx.createSequence().complete(p, { maxTokens: 32, temperature: 0 })));
  for (let i = 0; i < prompts.length; i++)
    assert.deepEqual(batched[i].tokens, (await split.complete(prompts[i], { maxTokens: 32, temperature: 0 })).tokens);
  // Unspecified: lavapipe's memory holds the whole model, so every layer goes to the device, and it says why.
  await using auto = await loadModel(defaultModelPath, { backend: 'vulkan' });
  assert.equal(auto.backend.gpuLayers, auto.backend.layers);
  assert.match(auto.backend.gpuLayersReason ?? '', /fits in llvmpipe|fits in/);
  for (const bad of [-1, 1.5, 'all'])
    await assert.rejects(loadModel(defaultModelPath, { backend: 'vulkan', gpuLayers: bad as number }), { code: 'INVALID_ARGUMENT', message: /gpuLayers/ });
  // More layers than the model has: all of them.
  await using more = await loadModel(defaultModelPath, { backend: 'vulkan', gpuLayers: 99 });
  assert.equal(more.backend.gpuLayers, more.backend.layers);
});

test('gpuMemory: a device budget too small for the model puts only the layers that fit on Vulkan (or none), and the split agrees with the CPU', async (t) => {
  if (skip) return t.skip(skip);
  const path = join(tempDir(t, 'aglm-vk-mem-'), 'f16.gguf');
  await writeRandomModel(path, { ...SHAPE, blockCount: 4 }, { arch: 'llama', type: GgmlType.F16, seed: 12 });
  const tokens = benchTokens(12, SHAPE.vocabSize, 1, 3);
  const want = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref' }, tokens);
  // 3 MiB: the F16 weights (~1.2 MiB a layer with its KV cells) do not fit at any precision with a prompt's
  // activations, so the host budget plans them (F16 kept) and the layers that fit go to the device.
  await using some = await loadModel(path, { backend: 'vulkan', gpuMemory: 3 * 1024 ** 2, cpuVariant: 'ref' });
  t.diagnostic(`gpuMemory 3 MiB: ${some.backend.gpuLayers} of ${some.backend.layers} layers on Vulkan (${some.backend.gpuLayersReason}); precision ${some.plan?.precision}`);
  assert.equal(some.plan?.precision, 'f16');
  assert.ok(some.backend.gpuLayers! >= 1 && some.backend.gpuLayers! < 4, `${some.backend.gpuLayers} layers`);
  assert.match(some.backend.gpuLayersReason!, /of 4 layers .* fit in llvmpipe/);
  const e = nmse(await logits(some, tokens), want);
  assert.ok(e < TOL_SAME_WEIGHTS, `split by gpuMemory: nmse ${e}`);
  // 1 byte: nothing fits, every layer on the CPU.
  await using none = await loadModel(path, { backend: 'vulkan', gpuMemory: 1 });
  assert.equal(none.backend.gpuLayers, 0);
  assert.equal(none.backend.backend, 'cpu');
  // Plenty: the whole model on the device, as stored.
  await using all = await loadModel(path, { backend: 'vulkan', gpuMemory: 1024 ** 3 });
  assert.equal(all.backend.gpuLayers, 4);
  assert.equal(all.plan?.precision, 'f16');
  assert.match(all.plan!.reasons.join('; '), /the gpuMemory option for llvmpipe/);
  await assert.rejects(loadModel(path, { backend: 'vulkan', gpuMemory: -5 }), { code: 'INVALID_ARGUMENT', message: /gpuMemory/ });
});
