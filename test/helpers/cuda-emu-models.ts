// Whole models on the CUDA backend with the CUDA emulator as its driver (test/native/cuda-emu.test.ts runs this in a
// child process with OPEN_AUTOGLM_CUDA_LIBRARY pointing at build/Release/test-cuda/libcuda.so.1, a driver version and
// OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1, since the registry opens a driver once per process). Prints one JSON line of
// measurements; the test holds them to its tolerances.
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { GgmlType, loadModel, type LoadModelOptions, type Model } from '../../lib/index.js';
import { writeRandomModel, type LlamaShape } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { defaultModelPath, greedyReference, logitsReference, maxAbsDiff } from './fixtures.js';
import { testPixels, writeVisionPair } from './vision.js';

function nmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) (num += (a[i] - b[i]) ** 2), (den += b[i] * b[i]);
  return num / den;
}
async function logits(model: Model, tokens: number[], batchSize: number): Promise<Float32Array> {
  await using ctx = model.createContext({ contextSize: 64, batchSize });
  return await ctx.evaluate(tokens, { logits: 'all' });
}
async function logitsOf(path: string, options: LoadModelOptions, tokens: number[], batchSize: number): Promise<Float32Array> {
  await using model = await loadModel(path, options);
  return await logits(model, tokens, batchSize);
}

const out: Record<string, unknown> = {};
const dir = mkdtempSync(join(tmpdir(), 'aglm-cuda-emu-'));
try {
  // stories260K: greedy tokens and logits against llama.cpp's reference.
  const ref = greedyReference();
  {
    await using m = await loadModel(defaultModelPath, { backend: 'cuda' });
    out.description = m.backend.description;
    out.backend = m.backend.backend;
    out.greedyEqual = JSON.stringify((await m.complete(ref.prompt, { maxTokens: 64, temperature: 0 })).tokens) === JSON.stringify(ref.generatedTokens);
    const lr = logitsReference();
    await using ctx = m.createContext({ contextSize: 128 });
    out.logitsMaxDiff = maxAbsDiff(await ctx.evaluate(lr.tokens, { logits: 'all' }), lr.logits);
    // 4 sequences at once give each exactly its tokens alone, with f32 and f16 KV cells.
    const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to', 'A cat sat'];
    const batchedEqual: boolean[] = [];
    for (const kvType of ['f32', 'f16'] as const) {
      const opts = { maxTokens: 24, temperature: 0 };
      const alone = [];
      for (const p of prompts) {
        await using c = m.createContext({ contextSize: 64, kvType });
        alone.push((await c.createSequence().complete(p, opts)).tokens);
      }
      await using c = m.createContext({ contextSize: prompts.length * 64, sequences: prompts.length, kvType });
      const batched = await Promise.all(prompts.map((p) => c.createSequence().complete(p, opts)));
      batchedEqual.push(batched.every((r, i) => JSON.stringify(r.tokens) === JSON.stringify(alone[i])));
    }
    out.batchedEqual = batchedEqual;
  }
  // gpuLayers: 2 of stories260K's 5 layers on the emulated GPU.
  {
    await using m = await loadModel(defaultModelPath, { backend: 'cuda', gpuLayers: 2 });
    out.splitDescription = m.backend.description;
    out.splitGreedyEqual = JSON.stringify((await m.complete(ref.prompt, { maxTokens: 64, temperature: 0 })).tokens) === JSON.stringify(ref.generatedTokens);
  }
  // Random-weight models of each architecture and type: the decode path (batches of 5: the mat-vec, quantized types on
  // dp4a with Q8_1 activations) against the CPU on the file's type, and a 40-token prompt in one batch (the tensor-core
  // tiles, f16 operands; F32 weights on the f32 tile) against the CPU on the weights in f32.
  const shape: LlamaShape = { embeddingLength: 256, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 512, vocabSize: 320, contextLength: 256 };
  const models: unknown[] = [];
  for (const arch of ['llama', 'qwen2', 'chatglm', 'glm4'] as const) {
    for (const [typeName, type] of [['F32', GgmlType.F32], ['F16', GgmlType.F16], ['Q8_0', GgmlType.Q8_0], ['Q4_0', GgmlType.Q4_0], ['Q4_K', GgmlType.Q4_K]] as const) {
      const path = join(dir, `${arch}-${typeName}.gguf`);
      await writeRandomModel(path, shape, { arch, type, seed: 5 });
      const decodeTokens = benchTokens(12, shape.vocabSize, 1, 3), promptTokens = benchTokens(40, shape.vocabSize, 1, 7);
      await using cu = await loadModel(path, { backend: 'cuda' });
      const gotDecode = await logits(cu, decodeTokens, 5), gotPrompt = await logits(cu, promptTokens, 64);
      const nativeDecode = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref' }, decodeTokens, 5);
      const f32Decode = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, decodeTokens, 5);
      const f32Prompt = await logitsOf(path, { backend: 'cpu', cpuVariant: 'ref', precision: 'f32' }, promptTokens, 64);
      models.push({ arch, type: typeName, decodeVsNative: nmse(gotDecode, nativeDecode), decodeVsF32: nmse(gotDecode, f32Decode), promptVsF32: nmse(gotPrompt, f32Prompt) });
    }
  }
  out.models = models;
  // The glm4v vision tower (its convolution as a matmul, the bicubic position table, attention without a mask), F32
  // and F16: image rows against the CPU, and the greedy tokens after the image.
  const vision: unknown[] = [];
  for (const [typeName, type] of [['F32', GgmlType.F32], ['F16', GgmlType.F16]] as const) {
    const pair = await writeVisionPair(dir, typeName, { type, convType: type, seed: 3 });
    await using cpu = await loadModel(pair.text, { backend: 'cpu', cpuVariant: 'ref', projector: pair.projector });
    await using cu = await loadModel(pair.text, { backend: 'cuda', projector: pair.projector });
    const image = { width: 112, height: 84, data: testPixels(112, 84, 'screen', 2) };
    const want = await cpu.encodeImage(image), got = await cu.encodeImage(image);
    const prompt = [{ type: 'image' as const, image }, { type: 'text' as const, text: 'describe' }];
    const a = await cpu.complete(prompt, { maxTokens: 12, temperature: 0 }), b = await cu.complete(prompt, { maxTokens: 12, temperature: 0 });
    vision.push({ type: typeName, rows: got.nTokens, wantRows: want.nTokens, nmse: nmse(got.data, want.data), tokensEqual: JSON.stringify(a.tokens) === JSON.stringify(b.tokens) });
  }
  out.vision = vision;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
