// Kernel plugins (include/open-autoglm/kernel-plugin.h): the example plugin (examples/kernel-plugin/, built by
// `npm run build:native` into build/Release/test-plugins/) is loaded, chosen for every Q8_0 matmul of a model loaded
// after registration, and computes what the built-in kernels compute. Its copy built for kernel plugin ABI version 2,
// a file that is no library, a library without the entry symbol and a missing file are refused with typed errors.
// Registration lasts for the process (each test file runs in its own), so the tests below run in order: the refusals
// first (nothing registered), then the registration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { GgmlType, loadModel, registerKernelPlugin, systemInfo, type Model } from '../../lib/index.js';
import { writeRandomModel } from '../../lib/tools/random-model.js';
import { maxAbsDiff, repoRoot, tempDir } from '../helpers/fixtures.js';

const suffix = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';
const pluginDir = join(repoRoot, 'build', 'Release', 'test-plugins');
const example = join(pluginDir, `aglm-kernel-plugin-example${suffix}`);
const exampleAbi2 = join(pluginDir, `aglm-kernel-plugin-example-abi2${suffix}`);
const noEntry = join(repoRoot, 'build', 'Release', 'test-backends', `aglm-backend-testcpu${suffix}`);
const skip = existsSync(example) && existsSync(exampleAbi2) ? false : `the example plugin is not built (${example}): npm run build:native`;

// Two layers of a Llama shape in Q8_0 (every matrix; norms stay F32), small enough for the scalar plugin.
const SHAPE = { embeddingLength: 256, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 512, vocabSize: 320, contextLength: 128 };
const PROMPT = 'Once upon a time there was a little robot';

async function allLogits(model: Model, tokens: ArrayLike<number>): Promise<Float32Array> {
  await using ctx = model.createContext({ contextSize: 64 });
  return await ctx.evaluate(tokens, { logits: 'all' });
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

test('registerKernelPlugin refuses, with typed errors, what is not a kernel plugin for this ABI version', { skip }, (t) => {
  const dir = tempDir(t, 'aglm-plugin-');
  assert.throws(() => registerKernelPlugin(join(dir, `absent${suffix}`)), { code: 'FILE_NOT_FOUND', message: /no kernel plugin file at .*absent/ });
  assert.throws(() => registerKernelPlugin(''), { code: 'INVALID_ARGUMENT' });
  const junk = join(dir, `junk${suffix}`);
  writeFileSync(junk, 'this is not a shared library\n');
  assert.throws(() => registerKernelPlugin(junk), { code: 'KERNEL_PLUGIN_INVALID', message: /junk.*(dlopen failed|LoadLibrary failed)/ });
  if (existsSync(noEntry)) {
    assert.throws(() => registerKernelPlugin(noEntry), {
      code: 'KERNEL_PLUGIN_INVALID',
      message: /aglm-backend-testcpu.*does not export aglm_kernel_plugin_entry, so it is not a kernel plugin/,
    });
  }
  assert.throws(() => registerKernelPlugin(exampleAbi2), {
    code: 'KERNEL_PLUGIN_INVALID',
    message: /example-abi2.*refused kernel plugin ABI version 1 \(the version this build of open-autoglm implements\): example-q8_0 was built for kernel plugin ABI version 2/,
  });
  assert.deepEqual(systemInfo().kernelPlugins, [], 'nothing was registered');
});

test('the example plugin is loaded, listed, chosen for every Q8_0 matmul of a later model, and correct', { skip }, async (t) => {
  const path = join(tempDir(t, 'aglm-plugin-model-'), 'q8_0.gguf');
  await writeRandomModel(path, SHAPE, { type: GgmlType.Q8_0, seed: 11 });

  // References, loaded before registration: the built-in kernels on the Q8_0 weights (activations quantized to Q8_0),
  // and on the same weights converted to F32 (f32 activations: the plugin's arithmetic, in another summation order).
  await using builtIn = await loadModel(path);
  await using asF32 = await loadModel(path, { precision: 'f32' });
  assert.doesNotMatch(builtIn.backend.description, /plugin/);
  const tokens = builtIn.tokenize(PROMPT);
  assert.ok(tokens.length >= 8);
  const refQ8 = await allLogits(builtIn, tokens);
  const refF32 = await allLogits(asF32, tokens);

  const info = registerKernelPlugin(example);
  assert.equal(info.name, 'example-q8_0');
  assert.equal(info.version, '1.0.0');
  assert.match(info.path, /aglm-kernel-plugin-example\.(so|dll|dylib)$/);
  assert.deepEqual(info.kernels, [
    { name: 'q8_0-f32-matmul', op: 'matmul', weightType: 'Q8_0', backend: 'cpu', activationType: 'F32', chosen: 0, calls: 0 },
  ]);
  assert.deepEqual(systemInfo().kernelPlugins, [info], 'systemInfo lists the plugin');
  assert.deepEqual(registerKernelPlugin(join(pluginDir, '.', `aglm-kernel-plugin-example${suffix}`)), info, 'the same file again: the same record');
  assert.equal(systemInfo().kernelPlugins.length, 1);

  // Chosen: a model loaded now runs every matmul weight (all Q8_0) on the plugin's kernel.
  await using withPlugin = await loadModel(path);
  const m = /plugin kernel example-q8_0\/q8_0-f32-matmul runs (\d+) of (\d+) matmul weights/.exec(withPlugin.backend.description);
  assert.ok(m, withPlugin.backend.description);
  const matmulWeights = 7 * SHAPE.blockCount + 1; // q, k, v, o, gate, up, down per layer; the output
  assert.equal(Number(m[1]), matmulWeights);
  assert.equal(Number(m[2]), matmulWeights);
  assert.equal(systemInfo().kernelPlugins[0].kernels[0].chosen, matmulWeights);

  // Called: prefill and decode both go through it; the models loaded before registration keep their kernels.
  const logits = await allLogits(withPlugin, tokens);
  const afterPrefill = systemInfo().kernelPlugins[0].kernels[0].calls;
  assert.ok(afterPrefill >= matmulWeights, `calls after one batch: ${afterPrefill}`);
  const r = await withPlugin.complete(PROMPT, { maxTokens: 6, temperature: 0 });
  assert.equal(r.tokens.length, 6);
  const afterGenerate = systemInfo().kernelPlugins[0].kernels[0].calls;
  assert.ok(afterGenerate >= afterPrefill + 6 * matmulWeights, `calls after generating: ${afterGenerate}`);
  await allLogits(builtIn, tokens);
  assert.equal(systemInfo().kernelPlugins[0].kernels[0].calls, afterGenerate, 'a model loaded before registration keeps its kernels');
  assert.doesNotMatch(builtIn.backend.description, /plugin/);

  // Correct. Against the same weights converted to F32 (the same arithmetic in another summation order): within 1e-5
  // of the largest logit (measured: 5e-7). Against the built-in Q8_0 path, whose activations are rounded to 8 bits
  // before each of the 15 matmuls: within 5% of the largest logit (measured: 2.1% on these random weights), and that
  // whole difference is the rounding, as the built-in F32 path differs from it by as much.
  const scale = maxAbs(refF32);
  assert.ok(scale > 0.1, `logits too small to compare (${scale})`);
  const vsF32 = maxAbsDiff(logits, refF32), vsQ8 = maxAbsDiff(logits, refQ8), roundingOnly = maxAbsDiff(refF32, refQ8);
  assert.ok(vsF32 <= 1e-5 * scale, `vs F32 weights: ${vsF32} (largest logit ${scale})`);
  assert.ok(vsQ8 <= 5e-2 * scale, `vs the built-in Q8_0 kernels: ${vsQ8} (largest logit ${scale})`);
  assert.ok(Math.abs(vsQ8 - roundingOnly) <= 1e-4 * scale, `plugin vs built-in ${vsQ8}, F32 path vs built-in ${roundingOnly}`);

  // A weight type the plugin does not serve keeps the built-in kernels.
  await using f32Now = await loadModel(path, { precision: 'f32' });
  assert.doesNotMatch(f32Now.backend.description, /plugin/);
  assert.equal(maxAbsDiff(await allLogits(f32Now, tokens), refF32), 0);
});

test('kernel-plugin.h is plain C: it and the example plugin compile as C99 with every warning an error', (t) => {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (!cc) {
    t.skip('no C compiler on PATH');
    return;
  }
  const dir = tempDir(t, 'aglm-plugin-c-');
  const src = join(dir, 'plugin.c');
  // The example's source with a main that checks its table, so the one file is compiled and linked as a program.
  writeFileSync(
    src,
    readFileSync(join(repoRoot, 'examples', 'kernel-plugin', 'q8_0-matmul.c'), 'utf8') +
      '\nint main(void) {\n  char why[64];\n  const aglm_kernel_plugin *p = aglm_kernel_plugin_entry(AGLM_KERNEL_PLUGIN_ABI_VERSION, why, sizeof why);\n' +
      '  return p && p->abi_version == 1 && p->kernel_size == sizeof(aglm_kernel_desc) && !aglm_kernel_plugin_entry(2, why, sizeof why) ? 0 : 1;\n}\n',
  );
  const exe = join(dir, process.platform === 'win32' ? 'plugin.exe' : 'plugin');
  const r = spawnSync(cc, ['-std=c99', '-pedantic', '-Wall', '-Wextra', '-Werror', '-I', join(repoRoot, 'include'), '-o', exe, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(spawnSync(exe).status, 0, 'the entry hands back its table for version 1 and refuses version 2');
  assert.doesNotMatch(readFileSync(join(repoRoot, 'include', 'open-autoglm', 'kernel-plugin.h'), 'utf8'), /std::|#include <(atomic|string|vector|memory)>/);
});
