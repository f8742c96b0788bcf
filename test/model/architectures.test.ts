// The decoder architectures (llama with Llama 3 frequency factors and rope scaling, qwen2, chatglm, glm4) against a
// scalar TypeScript forward pass (test/helpers/reference-forward.ts) on random F32 files in llama.cpp's layout, on
// every CPU variant; fused tensors used in place (row views) give bit-identical logits to the same weights stored as
// separate tensors, for block types, load-time conversion and repacking; sliding-window attention against the
// reference; bad files give typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AglmError, GgmlType, GgufValueType, loadModel, readGguf, writeGguf, type Precision } from '../../lib/index.js';
import { writeRandomModel, type LlamaShape, type RandomArchOptions } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { buildDecoderGraph, readDecoderHyperParams } from '../../lib/arch/decoder.js';
import { LLAMA_LAYOUT } from '../../lib/arch/llama.js';
import { nativeBinding, fromNative } from '../../lib/native.js';
import { AlignedTokenBuffer, alignedFloat32 } from '../../lib/buffers/aligned.js';
import { maxAbsDiff, runnableVariants, tempDir } from '../helpers/fixtures.js';
import { referenceLogits, type ReferenceConfig } from '../helpers/reference-forward.js';

const SHAPE: LlamaShape = { embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 96, vocabSize: 300, contextLength: 256 };
const TOKENS = benchTokens(12, SHAPE.vocabSize, 1, 3);
// F32 throughout: ours sums in float in another order than the double-precision reference; measured ~1e-6 on
// logits of magnitude ~3.
const TOL = 5e-5;

const CASES: { name: string; options: RandomArchOptions }[] = [
  { name: 'llama', options: { arch: 'llama' } },
  { name: 'llama3 rope_freqs', options: { arch: 'llama', ropeFreqs: true } },
  { name: 'llama linear scaling', options: { arch: 'llama', ropeScaling: { type: 'linear', factor: 2 } } },
  { name: 'llama YaRN', options: { arch: 'llama', ropeScaling: { type: 'yarn', factor: 4, originalContextLength: 16 } } },
  { name: 'qwen2', options: { arch: 'qwen2' } },
  { name: 'qwen2 YaRN', options: { arch: 'qwen2', ropeScaling: { type: 'yarn', factor: 8, originalContextLength: 32 } } },
  { name: 'chatglm (fused attn_qkv)', options: { arch: 'chatglm' } },
  { name: 'chatglm separate q/k/v', options: { arch: 'chatglm', qkv: 'separate' } },
  { name: 'glm4 (separate q/k/v)', options: { arch: 'glm4' } },
  { name: 'glm4 fused attn_qkv', options: { arch: 'glm4', qkv: 'fused' } },
];

test('each architecture matches the scalar TS reference (every variant)', async (t) => {
  const dir = tempDir(t, 'aglm-arch-');
  for (const c of CASES) {
    const path = join(dir, `${c.name.replace(/\W+/g, '-')}.gguf`);
    await writeRandomModel(path, SHAPE, { ...c.options, seed: 9 });
    const gguf = await readGguf(path);
    const expected = referenceLogits(path, gguf, TOKENS, { arch: c.options.arch! });
    for (const variant of runnableVariants()) {
      await using model = await loadModel(path, { cpuVariant: variant });
      assert.equal(model.architecture, c.options.arch);
      await using ctx = model.createContext({ contextSize: 32, batchSize: 5 });
      const diff = maxAbsDiff(await ctx.evaluate(TOKENS, { logits: 'all' }), expected);
      assert.ok(diff < TOL, `${c.name} ${variant}: max |diff| ${diff}`);
      if (variant === 'ref') t.diagnostic(`${c.name}: max |diff| vs TS reference ${diff.toExponential(2)}`);
    }
  }
});

test('the features the reference checks change the logits (so the comparison can fail)', async (t) => {
  // Each pair differs in one feature only (same seed, same weights): the change must dwarf TOL.
  const dir = tempDir(t, 'aglm-arch-');
  const run = async (name: string, o: RandomArchOptions) => {
    const path = join(dir, `${name}.gguf`);
    await writeRandomModel(path, SHAPE, { ...o, seed: 9 });
    await using model = await loadModel(path);
    await using ctx = model.createContext({ contextSize: 32 });
    return await ctx.evaluate(TOKENS, { logits: 'all' });
  };
  const plain = await run('plain', { arch: 'llama' });
  for (const [name, o] of [
    ['rope_freqs', { arch: 'llama', ropeFreqs: true }],
    ['yarn', { arch: 'llama', ropeScaling: { type: 'yarn', factor: 4, originalContextLength: 16 } }],
    ['linear', { arch: 'llama', ropeScaling: { type: 'linear', factor: 2 } }],
  ] as const) {
    const diff = maxAbsDiff(await run(name, o), plain);
    t.diagnostic(`${name} moves logits by ${diff.toExponential(2)}`);
    assert.ok(diff > 1000 * TOL, `${name}: ${diff}`);
  }
});

const VIEW_SHAPE: LlamaShape = { embeddingLength: 256, blockCount: 2, headCount: 8, headCountKv: 2, feedForwardLength: 256, vocabSize: 300, contextLength: 256 };

test('fused attn_qkv / ffn_up used in place give the same logits as separate tensors (types, conversion, repacking)', async (t) => {
  // The writer draws the same values for attn_qkv (and its bias) as for attn_q, attn_k, attn_v in turn, so a chatglm
  // file with the fused tensor and one with separate tensors hold the same rows: the views must give bit-identical
  // logits (the same kernels see the same bytes), after load-time conversion and AMX repacking too. The fused ffn_up
  // is a view in both files.
  const dir = tempDir(t, 'aglm-view-');
  const configs: { type: number; typeName: string; precision?: Precision }[] = [
    { type: GgmlType.F16, typeName: 'F16' },
    { type: GgmlType.Q8_0, typeName: 'Q8_0' },
    { type: GgmlType.Q4_0, typeName: 'Q4_0' },
    { type: GgmlType.Q4_K, typeName: 'Q4_K' },
    { type: GgmlType.F32, typeName: 'F32 -> q8_0', precision: 'q8_0' },
    { type: GgmlType.F32, typeName: 'F32 -> f16', precision: 'f16' },
  ];
  const tokens = benchTokens(20, VIEW_SHAPE.vocabSize, 1, 4);
  for (const c of configs) {
    const fused = join(dir, `fused-${c.type}.gguf`), separate = join(dir, `separate-${c.type}.gguf`);
    await writeRandomModel(fused, VIEW_SHAPE, { arch: 'chatglm', qkv: 'fused', type: c.type, seed: 2 });
    await writeRandomModel(separate, VIEW_SHAPE, { arch: 'chatglm', qkv: 'separate', type: c.type, seed: 2 });
    for (const variant of runnableVariants()) {
      const logits = async (path: string) => {
        await using model = await loadModel(path, { cpuVariant: variant, precision: c.precision });
        if (c.precision) assert.ok(model.plan.conversions.some((x) => x.name.startsWith('blk.0.attn_')), 'views are converted');
        await using ctx = model.createContext({ contextSize: 32, batchSize: 20 });
        const all = await ctx.evaluate(tokens, { logits: 'all' });
        const one = await ctx.evaluate([tokens[0]], { logits: 'last' }); // a decode step (fewer-than-4-token kernels)
        return { all, one };
      };
      const a = await logits(fused), b = await logits(separate);
      assert.equal(maxAbsDiff(a.all, b.all), 0, `${c.typeName} ${variant}: prefill`);
      assert.equal(maxAbsDiff(a.one, b.one), 0, `${c.typeName} ${variant}: decode`);
    }
  }
});

/** Logits of a llama graph with the attention window forced on, loaded straight into the addon (no architecture applies it). */
async function windowedLogits(path: string, tokens: number[], variant: string, kvType: 0 | 1, batch: number): Promise<Float32Array> {
  const gguf = await readGguf(path);
  const hp = readDecoderHyperParams(gguf, 'llama');
  assert.ok(hp.slidingWindow > 0);
  const g = buildDecoderGraph(gguf, hp, { ...LLAMA_LAYOUT, slidingWindow: true }, 'llama');
  const graph = g.build(g.logits, g.hidden);
  assert.ok(graph.ops.some((op) => op.op === 'attention' && op.i![4] === hp.slidingWindow));
  const binding = nativeBinding();
  try {
    const model = await binding.Model.load({ path, variant, graph });
    const ctx = await model.createContext({ nCtx: 64, nBatch: batch, nThreads: 2, kvType });
    const out = alignedFloat32(tokens.length * hp.vocabSize);
    const ids = new AlignedTokenBuffer().fill(tokens);
    const seq = ctx.createSequence();
    for (let done = 0; done < tokens.length; done += batch) {
      const count = Math.min(batch, tokens.length - done);
      await ctx.step([{ seq, tokens: ids, offset: done, count, out: 2, kind: 0, buffer: out, row: done }]);
    }
    ctx.dispose();
    model.dispose();
    return out;
  } catch (e) {
    throw fromNative(e);
  }
}

test('sliding-window attention matches the TS reference (every variant, F32 and F16 KV cache, split batches)', async (t) => {
  const dir = tempDir(t, 'aglm-swa-');
  const path = join(dir, 'swa.gguf');
  const WINDOW = 4;
  await writeRandomModel(path, SHAPE, {
    arch: 'llama',
    seed: 13,
    metadata: [{ key: 'llama.attention.sliding_window', type: GgufValueType.UINT32, value: WINDOW }],
  });
  const gguf = await readGguf(path);
  const cfg: ReferenceConfig = { arch: 'llama', slidingWindow: WINDOW };
  const expected = referenceLogits(path, gguf, TOKENS, cfg);
  const full = referenceLogits(path, gguf, TOKENS, { arch: 'llama' });
  const effect = maxAbsDiff(expected, full);
  t.diagnostic(`the window moves the reference logits by ${effect.toExponential(2)}`);
  assert.ok(effect > 1000 * TOL);
  // The window does not apply through loadModel: llama.cpp ignores the key for llama (lib/arch/decoder.ts).
  {
    await using model = await loadModel(path);
    await using ctx = model.createContext({ contextSize: 32 });
    assert.ok(maxAbsDiff(await ctx.evaluate(TOKENS, { logits: 'all' }), full) < TOL);
  }
  for (const variant of runnableVariants()) {
    for (const batch of [TOKENS.length, 3]) {
      const f32 = maxAbsDiff(await windowedLogits(path, TOKENS, variant, 0, batch), expected);
      assert.ok(f32 < TOL, `${variant} batch ${batch} F32 KV: max |diff| ${f32}`);
      // F16 keys/values: ~1e-3 relative rounding of what is attended to.
      const f16 = maxAbsDiff(await windowedLogits(path, TOKENS, variant, 1, batch), expected);
      assert.ok(f16 < 2e-2, `${variant} batch ${batch} F16 KV: max |diff| ${f16}`);
    }
  }
});

// ---- bad input ----------------------------------------------------------------------------------------------------

/** Writes a random `name` file (its architecture is the name's first word), edits it, and expects loadModel to fail so. */
async function expectLoadError(t: { after(fn: () => void): void }, name: string, edit: (spec: Awaited<ReturnType<typeof specOf>>) => void, code: string, message: RegExp) {
  const dir = tempDir(t, 'aglm-bad-');
  const src = join(dir, `${name}-src.gguf`), path = join(dir, `${name}.gguf`);
  const arch = name.split('-')[0] as RandomArchOptions['arch'];
  await writeRandomModel(src, SHAPE, { arch, seed: 1, ropeFreqs: arch === 'llama' });
  const spec = await specOf(src);
  edit(spec);
  await writeGguf(path, spec);
  await assert.rejects(loadModel(path), (e: unknown) => {
    assert.ok(e instanceof AglmError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** A written file as a write spec (metadata entries and tensors with their bytes), to edit and write again. */
async function specOf(path: string) {
  const gguf = await readGguf(path);
  const bytes = readFileSync(path);
  return {
    version: 3 as const,
    metadata: [...gguf.metadata.entries()].filter((e) => e.key !== 'general.alignment'),
    tensors: gguf.tensors.map((ti) => ({ name: ti.name, type: ti.type, dims: ti.dims.slice(), data: new Uint8Array(bytes.subarray(ti.offset, ti.offset + ti.byteLength)) })),
  };
}

test('missing or mis-shaped tensors and keys are typed errors', async (t) => {
  await expectLoadError(t, 'chatglm-no-ffn-up', (s) => (s.tensors = s.tensors.filter((x) => x.name !== 'blk.1.ffn_up.weight')), 'GGUF_MISSING_TENSOR', /blk\.1\.ffn_up\.weight/);
  // attn_qkv absent and no separate q/k/v either.
  await expectLoadError(t, 'chatglm-no-qkv', (s) => (s.tensors = s.tensors.filter((x) => !x.name.startsWith('blk.0.attn_qkv'))), 'GGUF_MISSING_TENSOR', /blk\.0\.attn_q\.weight/);
  // A fused gate/up of n_ff rows instead of 2 * n_ff.
  await expectLoadError(
    t,
    'chatglm-half-ffn-up',
    (s) => {
      const up = s.tensors.find((x) => x.name === 'blk.0.ffn_up.weight')!;
      up.dims[1] /= 2;
      up.data = up.data.subarray(0, up.data.length / 2);
    },
    'GGUF_SHAPE_MISMATCH',
    /blk\.0\.ffn_up\.weight.*\[64, 96\].*\[64, 192\]/,
  );
  // attn_qkv whose k/v part does not match head_count_kv.
  await expectLoadError(
    t,
    'chatglm-kv-heads',
    (s) => {
      const kv = s.metadata.find((e) => e.key === 'chatglm.attention.head_count_kv')!;
      kv.value = 4;
    },
    'GGUF_SHAPE_MISMATCH',
    /attn_qkv\.weight/,
  );
  await expectLoadError(t, 'chatglm-qkv-bias', (s) => {
    const b = s.tensors.find((x) => x.name === 'blk.0.attn_qkv.bias')!;
    b.dims[0] -= 16;
    b.data = b.data.subarray(0, b.dims[0] * 4);
  }, 'GGUF_SHAPE_MISMATCH', /attn_qkv\.bias/);
  await expectLoadError(t, 'glm4-no-post-norm', (s) => (s.tensors = s.tensors.filter((x) => x.name !== 'blk.0.post_ffw_norm.weight')), 'GGUF_MISSING_TENSOR', /post_ffw_norm/);
  await expectLoadError(t, 'qwen2-no-bias', (s) => (s.tensors = s.tensors.filter((x) => x.name !== 'blk.0.attn_k.bias')), 'GGUF_MISSING_TENSOR', /blk\.0\.attn_k\.bias/);
  await expectLoadError(t, 'chatglm-no-eps', (s) => (s.metadata = s.metadata.filter((e) => e.key !== 'chatglm.attention.layer_norm_rms_epsilon')), 'GGUF_MISSING_KEY', /layer_norm_rms_epsilon/);
  await expectLoadError(t, 'qwen2-rope-dims', (s) => (s.metadata.find((e) => e.key === 'qwen2.rope.dimension_count')!.value = 7), 'GGUF_SHAPE_MISMATCH', /rope\.dimension_count/);
  await expectLoadError(
    t,
    'qwen2-longrope',
    (s) => s.metadata.push({ key: 'qwen2.rope.scaling.type', type: GgufValueType.STRING, value: 'longrope' }, { key: 'qwen2.rope.scaling.factor', type: GgufValueType.FLOAT32, value: 4 }),
    'UNSUPPORTED_ARCH',
    /longrope/,
  );
  await expectLoadError(t, 'chatglm-arch', (s) => (s.metadata.find((e) => e.key === 'general.architecture')!.value = 'chatglm9'), 'UNSUPPORTED_ARCH', /chatglm9.*supported: llama, qwen2, chatglm, glm4/);
  await expectLoadError(
    t,
    'llama-rope-freqs-shape',
    (s) => {
      const ff = s.tensors.find((x) => x.name === 'rope_freqs.weight')!;
      ff.dims[0] = 3;
      ff.data = ff.data.subarray(0, 12);
    },
    'GGUF_SHAPE_MISMATCH',
    /rope_freqs\.weight.*\[3\].*\[8\]/,
  );
});
