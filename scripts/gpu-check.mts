// The TypeScript steps of scripts/gpu-check.sh, each one process writing one JSON file (run with tsx):
//   golden BACKEND OUT.json            stories260K on BACKEND: the 64 greedy reference tokens, and every position's
//                                      logits against the reference (max |diff|, and against the CPU backend's)
//   model SHAPE TYPE OUT.gguf          a random-weight llama file (lib/tools/random-model.ts); SHAPE tiny|tinyllama|8b,
//                                      TYPE q4_0|q8_0|f16
//   bench BACKEND FILE OUT.json PP TG  ppPP and tgTG on BACKEND (lib/tools/bench.ts), with the bytes each generated
//                                      token reads and the flops a prompt token costs, for the roofline fractions
import { writeFileSync } from 'node:fs';
import { GgmlType, loadModel, readGguf } from '../lib/index.js';
import { describeModelFile, runBench } from '../lib/tools/bench.js';
import { TINYLLAMA_SHAPE, writeRandomLlamaModel, type LlamaShape } from '../lib/tools/random-model.js';
import { defaultModelPath, greedyReference, logitsReference, maxAbsDiff } from '../test/helpers/fixtures.js';

/** Llama 3 8B's shape (vocabulary 128256, grouped-query attention 32/8, FFN 14336). */
const LLAMA_8B_SHAPE: LlamaShape = {
  embeddingLength: 4096, blockCount: 32, headCount: 32, headCountKv: 8, feedForwardLength: 14336, vocabSize: 128256, contextLength: 2048,
};
/** A small shape for machines without a GPU (lavapipe runs it in seconds). */
const TINY_SHAPE: LlamaShape = {
  embeddingLength: 512, blockCount: 4, headCount: 8, headCountKv: 4, feedForwardLength: 1536, vocabSize: 4096, contextLength: 1024,
};
const SHAPES: Record<string, LlamaShape> = { tiny: TINY_SHAPE, tinyllama: TINYLLAMA_SHAPE, '8b': LLAMA_8B_SHAPE };
const TYPES: Record<string, number> = { q4_0: GgmlType.Q4_0, q8_0: GgmlType.Q8_0, f16: GgmlType.F16 };
/** Logits within this of the reference count as equal (the tolerance test/model/vulkan.test.ts holds Vulkan to). */
const LOGITS_TOLERANCE = 1e-4;

function save(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n');
}

async function golden(backend: string, out: string): Promise<void> {
  const ref = greedyReference();
  const lr = logitsReference();
  const model = await loadModel(defaultModelPath, { backend });
  const cpu = await loadModel(defaultModelPath, { backend: 'cpu' });
  try {
    const r = await model.complete(ref.prompt, { maxTokens: 64, temperature: 0 });
    let firstDiff = -1;
    for (let i = 0; i < ref.generatedTokens.length && firstDiff < 0; i++) if (r.tokens[i] !== ref.generatedTokens[i]) firstDiff = i;
    const ctx = model.createContext({ contextSize: 128 });
    const cctx = cpu.createContext({ contextSize: 128 });
    const logits = await ctx.evaluate(lr.tokens, { logits: 'all' });
    const cpuLogits = await cctx.evaluate(lr.tokens, { logits: 'all' });
    ctx.dispose();
    cctx.dispose();
    const vsReference = maxAbsDiff(logits, lr.logits);
    const vsCpu = maxAbsDiff(logits, cpuLogits);
    const tokensEqual = firstDiff < 0 && r.tokens.length === ref.generatedTokens.length;
    save(out, {
      backend: model.backend.backend,
      description: model.backend.description,
      tokensEqual,
      firstDifferentToken: firstDiff,
      logitsMaxDiffVsReference: vsReference,
      logitsMaxDiffVsCpu: vsCpu,
      tolerance: LOGITS_TOLERANCE,
      ok: tokensEqual && vsReference <= LOGITS_TOLERANCE,
    });
  } finally {
    model.dispose();
    cpu.dispose();
  }
}

async function model(shape: string, type: string, out: string): Promise<void> {
  if (!SHAPES[shape] || TYPES[type] === undefined) throw new Error(`unknown shape ${shape} or type ${type}`);
  await writeRandomLlamaModel(out, SHAPES[shape], { type: TYPES[type], seed: 7 });
}

async function bench(backend: string, file: string, out: string, pp: number, tg: number): Promise<void> {
  const gguf = await readGguf(file);
  const info = describeModelFile(file, gguf);
  const r = await runBench({ modelPath: file, backend, promptTokens: pp, genTokens: tg, repetitions: 2 });
  // Per generated token every weight is read once, except the token embedding table (one row; read in full only
  // where the output projection reuses it), as bench/run.ts counts it. Per prompt token every matmul weight costs
  // two flops per element (the embedding table is a gather unless tied); attention is left out (small at 512).
  const embeddingRows = info.vocabSize > 0 ? info.tokenEmbeddingBytes * (1 - 1 / info.vocabSize) : 0;
  const bytesPerToken = info.sizeBytes - (info.tiedOutput ? 0 : embeddingRows);
  const embd = gguf.tensor('token_embd.weight');
  const matmulParams = info.params - (info.tiedOutput ? 0 : (embd?.nElements ?? 0));
  const get = (name: string) => r.tests.find((t) => t.test === name);
  save(out, {
    backend: r.backend,
    description: r.backendDescription,
    model: info.description,
    type: info.type,
    sizeBytes: info.sizeBytes,
    params: info.params,
    bytesPerToken,
    flopsPerPromptToken: 2 * matmulParams,
    warmupSeconds: r.warmupSeconds,
    pp: pp > 0 ? { test: `pp${pp}`, tokensPerSecond: get(`pp${pp}`)?.tokensPerSecond.mean, samples: get(`pp${pp}`)?.tokensPerSecond.samples } : null,
    tg: tg > 0 ? { test: `tg${tg}`, tokensPerSecond: get(`tg${tg}`)?.tokensPerSecond.mean, samples: get(`tg${tg}`)?.tokensPerSecond.samples } : null,
  });
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'golden' && args.length === 2) await golden(args[0], args[1]);
  else if (cmd === 'model' && args.length === 3) await model(args[0], args[1], args[2]);
  else if (cmd === 'bench' && args.length === 5) await bench(args[0], args[1], args[2], Number(args[3]), Number(args[4]));
  else {
    console.error('usage: tsx scripts/gpu-check.mts golden BACKEND OUT.json | model SHAPE TYPE OUT.gguf | bench BACKEND FILE OUT.json PP TG');
    process.exit(2);
  }
} catch (e) {
  // The stack first, the code and message last: gpu-check.sh keeps the end of the output as the step's detail.
  const err = e as { code?: string; message?: string; stack?: string };
  console.error(err.stack ?? String(e));
  console.error(`gpu-check.mts ${cmd}: ${err.code ?? 'ERROR'}: ${err.message ?? String(e)}`);
  process.exit(1);
}
