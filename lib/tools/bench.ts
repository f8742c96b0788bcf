// llama-bench-shaped speed measurement of one model file: prompt processing (ppN: N fixed pseudo-random tokens
// evaluated in one call in a cleared context, logits of the last token only) and text generation (tgN: N single-token
// evaluations from an empty context, each followed by an argmax over the logits), after a warm-up. Used by
// `open-autoglm bench` and bench/ (which compares against llama.cpp); tests never time anything.
import { readGguf, ggmlTypeName, type GgufFile } from '../gguf/index.js';
import { Grammar } from '../grammar/index.js';
import { loadModel, type CpuVariant, type Model } from '../model/model.js';
import type { Context } from '../model/context.js';
import { invalidArgument } from '../errors.js';

export interface BenchOptions {
  modelPath: string;
  /** Tokens of the pp test (0 skips it). Default 512. */
  promptTokens?: number;
  /** Tokens of the tg test (0 skips it). Default 128. */
  genTokens?: number;
  /** Threads of the context. Default: the context's default (the cores available). */
  threads?: number;
  /** Timed runs of each test. Default 3. */
  repetitions?: number;
  cpuVariant?: CpuVariant;
  /** The backend to run on ('cpu', 'vulkan', 'cuda', ...). Default: the best usable one, as loadModel. */
  backend?: string;
  /** Most tokens per native batch. Default 512 (as llama-bench). */
  batchSize?: number;
  /** Called right before each timed run (bench/ samples the machine's load there). */
  beforeSample?: (test: string) => void;
  /** Called after each timed run (for progress output). */
  onSample?: (test: string, tokensPerSecond: number) => void;
}

export interface BenchStat {
  mean: number;
  sd: number;
  samples: number[];
}

export interface BenchTestResult {
  /** 'pp512', 'tg128', ... as llama-bench names them. */
  test: string;
  nPrompt: number;
  nGen: number;
  tokensPerSecond: BenchStat;
  /** Seconds per run. */
  seconds: BenchStat;
}

export interface BenchModelInfo {
  path: string;
  /** Bytes of tensor data (what llama-bench calls size). */
  sizeBytes: number;
  /** Elements of all tensors (llama-bench's params). */
  params: number;
  /** The weight type holding the most bytes, e.g. 'Q4_0'. */
  type: string;
  /** llama-bench's model column, e.g. 'llama 1.1B Q4_0'. */
  description: string;
  architecture: string;
  vocabSize: number;
  /** Bytes of the token embedding table (only one row of it is read per token). */
  tokenEmbeddingBytes: number;
  /** Whether the output projection reuses the token embedding table (then it is read in full per token). */
  tiedOutput: boolean;
}

export interface BenchResult {
  model: BenchModelInfo;
  backend: string;
  /** The CPU kernel variant chosen and why. */
  backendDescription: string;
  threads: number;
  /** Seconds to load the model, create the context and evaluate the warm-up prompt (one run, not a benchmark). */
  warmupSeconds: number;
  tests: BenchTestResult[];
}

/** Mean, sample standard deviation and the samples. */
export function benchStat(samples: number[]): BenchStat {
  const n = samples.length;
  const mean = n ? samples.reduce((a, b) => a + b, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, samples };
}

/**
 * `n` fixed pseudo-random token ids in [3, vocabSize) (xorshift32, seeded), with `bos` first when given: the same
 * ids every run and in every engine.
 */
export function benchTokens(n: number, vocabSize: number, bos?: number, seed = 12345): number[] {
  let x = seed >>> 0 || 1;
  const out: number[] = [];
  if (bos !== undefined && n > 0) out.push(bos);
  while (out.length < n) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(3 + (x % (vocabSize - 3)));
  }
  return out;
}

/** Index of the largest value. */
export function argmaxOf(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Size, parameter count and dominant type of a GGUF file, as llama-bench reports them. */
export function describeModelFile(path: string, gguf: GgufFile): BenchModelInfo {
  let sizeBytes = 0;
  let params = 0;
  const bytesByType = new Map<number, number>();
  for (const t of gguf.tensors) {
    sizeBytes += t.byteLength;
    params += t.nElements;
    if (t.dims.length >= 2) bytesByType.set(t.type, (bytesByType.get(t.type) ?? 0) + t.byteLength);
  }
  let type = -1;
  for (const [k, v] of bytesByType) if (type < 0 || v > bytesByType.get(type)!) type = k;
  const typeName = type >= 0 ? ggmlTypeName(type) : 'F32';
  const architecture = gguf.metadata.optString('general.architecture') ?? 'unknown';
  const embd = gguf.tensor('token_embd.weight');
  const vocabSize = embd?.dims[1] ?? 0;
  const tiedOutput = gguf.tensor('output.weight') === undefined;
  const b = params / 1e9;
  const scale = b >= 1 ? `${b.toFixed(1)}B` : `${Math.round(params / 1e6)}M`;
  return {
    path,
    sizeBytes,
    params,
    type: typeName,
    description: `${architecture} ${scale} ${typeName}`,
    architecture,
    vocabSize,
    tokenEmbeddingBytes: embd?.byteLength ?? 0,
    tiedOutput,
  };
}

function intOption(name: string, v: number | undefined, min: number, def: number): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < min) throw invalidArgument(name, `an integer >= ${min}`, v);
  return v;
}

async function timePrompt(ctx: Context, tokens: number[]): Promise<number> {
  ctx.clear();
  const t0 = performance.now();
  await ctx.evaluate(tokens, { logits: 'last' });
  return (performance.now() - t0) / 1000;
}

async function timeGeneration(ctx: Context, n: number, first: number): Promise<number> {
  ctx.clear();
  let token = first;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) token = argmaxOf(await ctx.evaluate([token], { logits: 'last' }));
  return (performance.now() - t0) / 1000;
}

/**
 * Measures ppN and tgN of a model file with our engine. The warm-up (one short prompt and one generated token)
 * pages in every weight before anything is timed.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const promptTokens = intOption('promptTokens', options.promptTokens, 0, 512);
  const genTokens = intOption('genTokens', options.genTokens, 0, 128);
  const repetitions = intOption('repetitions', options.repetitions, 1, 3);
  const batchSize = intOption('batchSize', options.batchSize, 1, 512);
  if (options.threads !== undefined) intOption('threads', options.threads, 1, 1);
  const gguf = await readGguf(options.modelPath);
  const info = describeModelFile(options.modelPath, gguf);
  const t0 = performance.now();
  const model: Model = await loadModel(options.modelPath, { cpuVariant: options.cpuVariant, backend: options.backend });
  try {
    const contextSize = Math.max(promptTokens + genTokens, 64);
    const ctx = model.createContext({ contextSize, threads: options.threads, batchSize: Math.min(batchSize, contextSize) });
    const bos = model.tokenizer.bos;
    const prompt = benchTokens(promptTokens, model.vocabSize, bos);
    const first = bos ?? prompt[0] ?? 3;
    await ctx.evaluate(benchTokens(Math.min(32, contextSize - 1), model.vocabSize, bos), { logits: 'last' });
    await ctx.evaluate([first], { logits: 'last' });
    const warmupSeconds = (performance.now() - t0) / 1000;
    const tests: BenchTestResult[] = [];
    const run = async (test: string, nPrompt: number, nGen: number, once: () => Promise<number>) => {
      const secs: number[] = [];
      for (let r = 0; r < repetitions; r++) {
        options.beforeSample?.(test);
        const s = await once();
        secs.push(s);
        options.onSample?.(test, (nPrompt + nGen) / s);
      }
      tests.push({
        test,
        nPrompt,
        nGen,
        tokensPerSecond: benchStat(secs.map((s) => (nPrompt + nGen) / s)),
        seconds: benchStat(secs),
      });
    };
    if (promptTokens > 0) await run(`pp${promptTokens}`, promptTokens, 0, () => timePrompt(ctx, prompt));
    if (genTokens > 0) await run(`tg${genTokens}`, 0, genTokens, () => timeGeneration(ctx, genTokens, first));
    const result: BenchResult = {
      model: info,
      backend: model.backend.backend,
      backendDescription: model.backend.description,
      threads: ctx.threads,
      warmupSeconds,
      tests,
    };
    ctx.dispose();
    return result;
  } finally {
    model.dispose();
  }
}

export interface BatchedBenchOptions {
  modelPath: string;
  /** Sequence counts to measure, each in a context of its own. Default [1, 2, 4, 8]. */
  sequences?: number[];
  /** Tokens each sequence generates (timed). Default 64. */
  genTokens?: number;
  /** Prompt tokens of each sequence before the timed generation (different per sequence). Default 8. */
  promptTokens?: number;
  threads?: number;
  cpuVariant?: CpuVariant;
  /**
   * Also time the first token of a new request of this many prompt tokens while sequences - 1 others decode (for the
   * largest sequence count; 0 skips it). Default 256.
   */
  ttftPromptTokens?: number;
  repetitions?: number;
  beforeSample?: (test: string) => void;
  onSample?: (test: string, value: number) => void;
}

export interface BatchedBenchResult {
  backendDescription: string;
  threads: number;
  /** 'bd<S>' -> aggregate generated tokens/s of S sequences decoding at once; 'ttft' -> ms. */
  tests: { test: string; value: BenchStat }[];
}

/** The fixed prompt of sequence `s` (distinct per sequence, the same in every engine). */
export function batchedPrompt(s: number, n: number, vocabSize: number, bos?: number): number[] {
  return benchTokens(n, vocabSize, bos, 1000 + 7919 * s);
}

/**
 * Aggregate decoding speed of S sequences generating at once on one context (each weight read once per step for all
 * of them): every sequence first evaluates its own prompt (untimed), then all generate `genTokens` greedy tokens
 * concurrently; the value is S * genTokens / the time until the last one is done. With `ttftPromptTokens`, the time
 * to the first token of a new request while the other sequences keep decoding.
 */
export async function runBatchedBench(options: BatchedBenchOptions): Promise<BatchedBenchResult> {
  const counts = options.sequences ?? [1, 2, 4, 8];
  const gen = intOption('genTokens', options.genTokens, 1, 64);
  const promptN = intOption('promptTokens', options.promptTokens, 1, 8);
  const ttftN = intOption('ttftPromptTokens', options.ttftPromptTokens, 0, 256);
  const reps = intOption('repetitions', options.repetitions, 1, 1);
  const model = await loadModel(options.modelPath, { cpuVariant: options.cpuVariant });
  const bos = model.tokenizer.bos;
  const tests: BatchedBenchResult['tests'] = [];
  let threads = 0;
  try {
    // Warm-up: page in every weight.
    {
      const ctx = model.createContext({ contextSize: 64, threads: options.threads });
      threads = ctx.threads;
      await ctx.evaluate(benchTokens(32, model.vocabSize, bos), { logits: 'last' });
      ctx.dispose();
    }
    for (const S of counts) {
      const samples: number[] = [];
      for (let r = 0; r < reps; r++) {
        const ctx = model.createContext({ contextSize: S * (promptN + gen + 8), sequences: S, threads: options.threads });
        const seqs = Array.from({ length: S }, () => ctx.createSequence());
        const firsts = await Promise.all(seqs.map(async (s, i) => argmaxOf(await s.evaluate(batchedPrompt(i, promptN, model.vocabSize, bos)))));
        options.beforeSample?.(`bd${S}`);
        const t0 = performance.now();
        await Promise.all(
          seqs.map(async (s, i) => {
            let t = firsts[i];
            for (let k = 0; k < gen; k++) t = argmaxOf(await s.evaluate([t]));
          }),
        );
        const tps = (S * gen) / ((performance.now() - t0) / 1000);
        samples.push(tps);
        options.onSample?.(`bd${S}`, tps);
        ctx.dispose();
      }
      tests.push({ test: `bd${S}`, value: benchStat(samples) });
    }
    if (ttftN > 0) {
      const S = Math.max(...counts);
      const samples: number[] = [];
      for (let r = 0; r < reps; r++) {
        const ctx = model.createContext({ contextSize: S * (promptN + 4 * gen) + ttftN + 8, sequences: S, threads: options.threads });
        const seqs = Array.from({ length: S }, () => ctx.createSequence());
        const prompt = batchedPrompt(S, ttftN, model.vocabSize, bos);
        let stop = false;
        let started = 0;
        const decoding = seqs.slice(0, S - 1).map(async (s, i) => {
          let t = argmaxOf(await s.evaluate(batchedPrompt(i, promptN, model.vocabSize, bos)));
          for (let k = 0; k < 4 * gen && !stop; k++) {
            t = argmaxOf(await s.evaluate([t]));
            if (k === 8) started++;
          }
        });
        while (started < S - 1) await new Promise((res) => setTimeout(res, 5));
        options.beforeSample?.('ttft');
        const t0 = performance.now();
        argmaxOf(await seqs[S - 1].evaluate(prompt));
        const ms = performance.now() - t0;
        stop = true;
        await Promise.all(decoding);
        samples.push(ms);
        options.onSample?.('ttft', ms);
        ctx.dispose();
      }
      tests.push({ test: 'ttft', value: benchStat(samples) });
    }
    return { backendDescription: model.backend.description, threads, tests };
  } finally {
    model.dispose();
  }
}

/** The schema of the structured-output benchmark: a long array of small objects (an output longer than 128 tokens). */
export const GRAMMAR_BENCH_SCHEMA = {
  type: 'array',
  minItems: 64,
  items: {
    type: 'object',
    properties: { id: { type: 'integer', minimum: 0, maximum: 999 }, name: { type: 'string', maxLength: 16 }, ok: { type: 'boolean' } },
    required: ['id', 'name', 'ok'],
  },
};

export interface GrammarBenchOptions {
  modelPath: string;
  /** GBNF the constrained runs follow (a fresh Grammar per run: no masks cached from an earlier one). */
  gbnf: string;
  genTokens?: number;
  threads?: number;
  repetitions?: number;
  beforeSample?: (test: string) => void;
  onSample?: (test: string, tokensPerSecond: number) => void;
}

/**
 * Greedy decoding speed without and with a grammar ('tgfree', 'tggrammar'): tokens/s from the first generated token
 * to the last of `genTokens` after an 8-token prompt, end of generation never chosen in the free runs.
 */
export async function runGrammarBench(options: GrammarBenchOptions): Promise<{ backendDescription: string; tests: { test: string; value: BenchStat }[]; tokens: Record<string, number> }> {
  const gen = intOption('genTokens', options.genTokens, 2, 128);
  const reps = intOption('repetitions', options.repetitions, 1, 1);
  const model = await loadModel(options.modelPath);
  try {
    const bos = model.tokenizer.bos;
    const prompt = batchedPrompt(0, 8, model.vocabSize, bos);
    const noEnd = new Map([...model.tokenizer.vocab.eog].map((t) => [t, -Infinity] as [number, number]));
    const once = async (grammar: Grammar | undefined): Promise<{ tps: number; n: number }> => {
      await using ctx = model.createContext({ contextSize: 8 + gen + 8, threads: options.threads });
      const seq = ctx.createSequence();
      let t0 = 0;
      let n = 0;
      for await (const chunk of seq.generate(prompt, { temperature: 0, maxTokens: gen, ...(grammar ? { grammar } : { logitBias: noEnd }) })) {
        if (chunk.token < 0) continue;
        if (n++ === 0) t0 = performance.now();
      }
      return { tps: (n - 1) / ((performance.now() - t0) / 1000), n };
    };
    // Warm-up: weights paged in, the vocabulary's byte trie built (once per tokenizer in a process).
    await once(undefined);
    await once(new Grammar(options.gbnf));
    const samples: Record<string, number[]> = { tgfree: [], tggrammar: [] };
    const tokens: Record<string, number> = {};
    for (let r = 0; r < reps; r++) {
      for (const test of r % 2 === 0 ? ['tgfree', 'tggrammar'] : ['tggrammar', 'tgfree']) {
        options.beforeSample?.(test);
        const { tps, n } = await once(test === 'tggrammar' ? new Grammar(options.gbnf) : undefined);
        tokens[test] = n;
        samples[test].push(tps);
        options.onSample?.(test, tps);
      }
    }
    return { backendDescription: model.backend.description, tests: Object.entries(samples).map(([test, v]) => ({ test, value: benchStat(v) })), tokens };
  } finally {
    model.dispose();
  }
}
