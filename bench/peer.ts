// The peer engine: node-llama-cpp 3.22.1 (llama.cpp inside), installed on demand into a scratch folder
// (.bench/peer/, gitignored), never as a dependency of this package. Installing and loading it is
// lib/tools/peer-install.ts (re-exported here); this file drives its inference API for the benchmark and the peer tests.
import { resolve } from 'node:path';
import { benchStat, type BenchStat } from '../lib/tools/bench.js';
import { DEFAULT_PEER_DIR, loadPeer as loadPeerAs, loadPeerModule } from '../lib/tools/peer-install.js';

export { DEFAULT_PEER_DIR, ensurePeer, PEER_VERSION, peerBinaryPackage, type PeerInstall } from '../lib/tools/peer-install.js';
export const repoRoot = resolve(import.meta.dirname, '..');

// The parts of node-llama-cpp's API used here (typed locally: the package is not a dependency).
export interface PeerSequence {
  clearHistory(): Promise<void>;
  evaluate(tokens: number[], options: { temperature: number; yieldEogToken?: boolean; grammarEvaluationState?: object }): AsyncGenerator<number, void, unknown>;
  controlledEvaluate(
    input: (number | [number, { generateNext?: { token?: boolean; logits?: boolean; options?: { temperature?: number } } }])[],
  ): Promise<({ next: { token?: number | null; logits?: Map<number, number> } } | undefined)[]>;
}
export interface PeerContext {
  getSequence(): PeerSequence;
  dispose(): Promise<void>;
}
export interface PeerModel {
  isEogToken(token: number): boolean;
  createContext(options: {
    contextSize: number;
    threads: number;
    batchSize: number;
    sequences?: number;
    flashAttention?: boolean | 'auto';
    experimentalKvCacheKeyType?: number;
    experimentalKvCacheValueType?: number;
  }): Promise<PeerContext>;
  createEmbeddingContext(options: { contextSize: number; batchSize: number; threads: number }): Promise<PeerEmbeddingContext>;
  dispose(): Promise<void>;
}
export interface PeerEmbeddingContext {
  getEmbeddingFor(input: number[] | string): Promise<{ readonly vector: readonly number[] }>;
  dispose(): Promise<void>;
}
export interface PeerGrammar {
  readonly grammar: string;
}
export interface PeerLlama {
  loadModel(options: { modelPath: string }): Promise<PeerModel>;
  createGrammar(options: { grammar: string }): Promise<PeerGrammar>;
  readonly systemInfo: string;
  dispose(): Promise<void>;
}

/** Loads the installed peer's CPU build (no GPU, never builds from source). */
export function loadPeer(dir = DEFAULT_PEER_DIR): Promise<PeerLlama> {
  return loadPeerAs<PeerLlama>(dir);
}

/**
 * Logits of every position of `tokens` evaluated from an empty context: [tokens.length * vocabSize]. `kvType`
 * sets llama.cpp's KV cache type and `flashAttention` its attention path (defaults: F16 and 'auto', which is on for
 * the CPU; its flash attention rounds K and V to F16 whatever the cache type). F32 without flash attention
 * computes attention in F32 as we do.
 */
export async function peerLogits(
  llama: PeerLlama,
  modelPath: string,
  tokens: number[],
  vocabSize: number,
  options: { threads?: number; kvType?: 'F16' | 'F32'; flashAttention?: boolean | 'auto' } = {},
): Promise<Float32Array> {
  const model = await llama.loadModel({ modelPath });
  try {
    const ctx = await model.createContext({
      contextSize: Math.max(64, tokens.length),
      threads: options.threads ?? 2,
      batchSize: Math.max(64, tokens.length),
      flashAttention: options.flashAttention ?? 'auto',
      // ggml type ids (0 F32, 1 F16): node-llama-cpp 3.22.1 hands this option to its addon unresolved, and the
      // addon only accepts numbers.
      experimentalKvCacheKeyType: options.kvType === 'F32' ? 0 : 1,
      experimentalKvCacheValueType: options.kvType === 'F32' ? 0 : 1,
    });
    try {
      const out = await ctx
        .getSequence()
        .controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true, options: { temperature: 0 } } }]));
      const logits = new Float32Array(tokens.length * vocabSize).fill(NaN);
      for (let i = 0; i < tokens.length; i++) {
        const m = out[i]?.next.logits;
        if (!m) throw new Error(`node-llama-cpp returned no logits for position ${i}`);
        for (const [id, v] of m) if (id >= 0 && id < vocabSize) logits[i * vocabSize + id] = v;
      }
      return logits;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * llama.cpp's embedding of each token sequence, as node-llama-cpp's embedding context gives it (not normalised): pooled
 * as the file's `<arch>.pooling_type` says (mean, cls, last), or without one the last token's hidden state.
 * node-llama-cpp puts BOS (bert: [CLS]) first and EOS/[SEP] last when the vocabulary adds them and they are missing.
 */
export async function peerEmbeddings(
  llama: PeerLlama,
  modelPath: string,
  inputs: number[][],
  options: { threads?: number } = {},
): Promise<Float64Array[]> {
  const model = await llama.loadModel({ modelPath });
  try {
    const size = Math.max(64, ...inputs.map((t) => t.length + 1));
    const ctx = await model.createEmbeddingContext({ contextSize: size, batchSize: size, threads: options.threads ?? 2 });
    try {
      const out: Float64Array[] = [];
      for (const tokens of inputs) out.push(Float64Array.from((await ctx.getEmbeddingFor([...tokens])).vector));
      return out;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

export interface PeerBenchResult {
  warmupSeconds: number;
  tests: { test: string; tokensPerSecond: BenchStat; seconds: BenchStat }[];
}

/**
 * The peer's side of runBench (lib/tools/bench.ts), measured the same way: warm-up (a short prompt and one token),
 * then ppN = N tokens in one call from a cleared sequence with the last token's logits (a greedy token is taken
 * from them), and tgN = N single-token steps from an empty sequence, each greedy (llama.cpp's greedy sampler is
 * an argmax).
 */
export async function peerBench(
  llama: PeerLlama,
  o: {
    modelPath: string;
    prompt: number[];
    warmup: number[];
    genTokens: number;
    first: number;
    threads: number;
    batchSize?: number;
    repetitions?: number;
    /** Default: node-llama-cpp's default ('auto', which turns it on for the CPU). */
    flashAttention?: boolean | 'auto';
    beforeSample?: (test: string) => void;
    onSample?: (test: string, tokensPerSecond: number) => void;
  },
): Promise<PeerBenchResult> {
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: o.modelPath });
  try {
    const contextSize = Math.max(o.prompt.length + o.genTokens, 64);
    const ctx = await model.createContext({
      contextSize,
      threads: o.threads,
      batchSize: Math.min(o.batchSize ?? 512, contextSize),
      sequences: 1,
      ...(o.flashAttention !== undefined ? { flashAttention: o.flashAttention } : {}),
    });
    const seq = ctx.getSequence();
    const last = (tokens: number[]) =>
      tokens.map((t, i) => (i === tokens.length - 1 ? ([t, { generateNext: { token: true, options: { temperature: 0 } } }] as [number, object]) : t)) as Parameters<
        PeerSequence['controlledEvaluate']
      >[0];
    await seq.controlledEvaluate(last(o.warmup));
    await seq.controlledEvaluate(last([o.first]));
    const warmupSeconds = (performance.now() - t0) / 1000;
    const reps = o.repetitions ?? 1;
    const tests: PeerBenchResult['tests'] = [];
    if (o.prompt.length > 0) {
      const secs: number[] = [];
      for (let r = 0; r < reps; r++) {
        await seq.clearHistory();
        o.beforeSample?.(`pp${o.prompt.length}`);
        const s0 = performance.now();
        const out = await seq.controlledEvaluate(last(o.prompt));
        secs.push((performance.now() - s0) / 1000);
        o.onSample?.(`pp${o.prompt.length}`, o.prompt.length / secs[secs.length - 1]);
        if (typeof out[o.prompt.length - 1]?.next.token !== 'number') throw new Error('node-llama-cpp produced no token after the prompt');
      }
      tests.push({ test: `pp${o.prompt.length}`, tokensPerSecond: benchStat(secs.map((s) => o.prompt.length / s)), seconds: benchStat(secs) });
    }
    if (o.genTokens > 0) {
      const secs: number[] = [];
      for (let r = 0; r < reps; r++) {
        await seq.clearHistory();
        let n = 0;
        o.beforeSample?.(`tg${o.genTokens}`);
        const s0 = performance.now();
        let s = 0;
        for await (const token of seq.evaluate([o.first], { temperature: 0, yieldEogToken: true })) {
          void token;
          if (++n >= o.genTokens) {
            s = (performance.now() - s0) / 1000;
            break;
          }
        }
        secs.push(s);
        o.onSample?.(`tg${o.genTokens}`, o.genTokens / s);
      }
      tests.push({ test: `tg${o.genTokens}`, tokensPerSecond: benchStat(secs.map((s) => o.genTokens / s)), seconds: benchStat(secs) });
    }
    await ctx.dispose();
    return { warmupSeconds, tests };
  } finally {
    await model.dispose();
  }
}

/**
 * The peer's side of runBatchedBench (lib/tools/bench.ts), measured the same way: S sequences of one context
 * (`context.getSequence()`), each evaluating its prompt first (untimed, with a greedy first token), then all
 * generating `genTokens` greedy tokens at once through the `evaluate` generator (node-llama-cpp batches concurrent
 * sequences of a context into shared llama_decode calls); and the first token of a new request of `ttftPromptTokens`
 * while S - 1 others decode.
 */
export async function peerBatchedBench(
  llama: PeerLlama,
  o: {
    modelPath: string;
    sequences: number[];
    genTokens: number;
    prompts: (s: number) => number[];
    ttftPrompt?: number[];
    threads: number;
    repetitions?: number;
    beforeSample?: (test: string) => void;
    onSample?: (test: string, value: number) => void;
  },
): Promise<{ tests: { test: string; value: BenchStat }[] }> {
  const model = await llama.loadModel({ modelPath: o.modelPath });
  const greedyLast = (tokens: number[]) =>
    tokens.map((t, i) => (i === tokens.length - 1 ? ([t, { generateNext: { token: true, options: { temperature: 0 } } }] as [number, object]) : t)) as Parameters<
      PeerSequence['controlledEvaluate']
    >[0];
  const firstToken = async (seq: PeerSequence, prompt: number[]) => {
    const out = await seq.controlledEvaluate(greedyLast(prompt));
    const t = out[prompt.length - 1]?.next.token;
    if (typeof t !== 'number') throw new Error('node-llama-cpp produced no token after the prompt');
    return t;
  };
  const decode = async (seq: PeerSequence, first: number, n: number, stop?: () => boolean, onToken?: (k: number) => void) => {
    let k = 0;
    for await (const token of seq.evaluate([first], { temperature: 0, yieldEogToken: true })) {
      void token;
      onToken?.(k);
      if (++k >= n || stop?.()) break;
    }
  };
  const tests: { test: string; value: BenchStat }[] = [];
  try {
    const promptN = o.prompts(0).length;
    { // warm-up
      const ctx = await model.createContext({ contextSize: 64, threads: o.threads, batchSize: 64, sequences: 1 });
      await firstToken(ctx.getSequence(), benchTokensForWarmup(o.prompts));
      await ctx.dispose();
    }
    for (const S of o.sequences) {
      const samples: number[] = [];
      for (let r = 0; r < (o.repetitions ?? 1); r++) {
        const contextSize = S * (promptN + o.genTokens + 8);
        const ctx = await model.createContext({ contextSize, threads: o.threads, batchSize: Math.min(512, contextSize), sequences: S });
        const seqs = Array.from({ length: S }, () => ctx.getSequence());
        const firsts = await Promise.all(seqs.map((s, i) => firstToken(s, o.prompts(i))));
        o.beforeSample?.(`bd${S}`);
        const t0 = performance.now();
        await Promise.all(seqs.map((s, i) => decode(s, firsts[i], o.genTokens)));
        const tps = (S * o.genTokens) / ((performance.now() - t0) / 1000);
        samples.push(tps);
        o.onSample?.(`bd${S}`, tps);
        await ctx.dispose();
      }
      tests.push({ test: `bd${S}`, value: benchStat(samples) });
    }
    if (o.ttftPrompt && o.ttftPrompt.length > 0) {
      const S = Math.max(...o.sequences);
      const samples: number[] = [];
      for (let r = 0; r < (o.repetitions ?? 1); r++) {
        const contextSize = S * (promptN + 4 * o.genTokens) + o.ttftPrompt.length + 8;
        const ctx = await model.createContext({ contextSize, threads: o.threads, batchSize: Math.min(512, contextSize), sequences: S });
        const seqs = Array.from({ length: S }, () => ctx.getSequence());
        let stop = false;
        let started = 0;
        const decoding = seqs.slice(0, S - 1).map(async (s, i) => {
          const first = await firstToken(s, o.prompts(i));
          await decode(s, first, 4 * o.genTokens, () => stop, (k) => k === 8 && started++);
        });
        while (started < S - 1) await new Promise((res) => setTimeout(res, 5));
        o.beforeSample?.('ttft');
        const t0 = performance.now();
        await firstToken(seqs[S - 1], o.ttftPrompt);
        const ms = performance.now() - t0;
        stop = true;
        await Promise.all(decoding);
        samples.push(ms);
        o.onSample?.('ttft', ms);
        await ctx.dispose();
      }
      tests.push({ test: 'ttft', value: benchStat(samples) });
    }
    return { tests };
  } finally {
    await model.dispose();
  }
}

function benchTokensForWarmup(prompts: (s: number) => number[]): number[] {
  return [...prompts(100), ...prompts(101), ...prompts(102), ...prompts(103)].slice(0, 32);
}

interface PeerGrammarModule {
  LlamaGrammarEvaluationState: new (options: { model: PeerModel; grammar: PeerGrammar }) => object;
}

/**
 * llama.cpp's greedy continuation of `prompt` (token ids, evaluated exactly as given) under a GBNF grammar:
 * node-llama-cpp's sequence.evaluate with a LlamaGrammarEvaluationState from llama.createGrammar (its grammar
 * sampler), F32 KV cache without flash attention. The tokens generated before its end-of-generation token.
 */
export async function peerGrammarGreedy(
  llama: PeerLlama,
  modelPath: string,
  prompt: number[],
  gbnf: string,
  maxTokens: number,
  options: { threads?: number; dir?: string } = {},
): Promise<{ tokens: number[]; stopReason: 'eog' | 'maxTokens' }> {
  const mod = await loadPeerModule<PeerGrammarModule>(options.dir ?? DEFAULT_PEER_DIR);
  const grammar = await llama.createGrammar({ grammar: gbnf });
  const model = await llama.loadModel({ modelPath });
  try {
    const size = Math.max(256, prompt.length + maxTokens + 8);
    const ctx = await model.createContext({
      contextSize: size,
      threads: options.threads ?? 2,
      batchSize: size,
      flashAttention: false,
      experimentalKvCacheKeyType: 0,
      experimentalKvCacheValueType: 0,
    });
    try {
      const grammarEvaluationState = new mod.LlamaGrammarEvaluationState({ model, grammar });
      const tokens: number[] = [];
      const seq = ctx.getSequence();
      for await (const token of seq.evaluate(prompt, { temperature: 0, grammarEvaluationState, yieldEogToken: true })) {
        if (model.isEogToken(token)) return { tokens, stopReason: 'eog' };
        tokens.push(token);
        if (tokens.length >= maxTokens) break;
      }
      return { tokens, stopReason: 'maxTokens' };
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * The peer's greedy decoding speed without and with the same GBNF ('tgfree', 'tggrammar'), as runGrammarBench
 * measures ours: tokens/s from the first generated token to the last of `genTokens` after `prompt`, a fresh grammar
 * state per run (llama.createGrammar once; it parses the text), F16 KV cache and flash attention as its defaults.
 */
export async function peerGrammarBench(
  llama: PeerLlama,
  options: {
    modelPath: string;
    prompt: number[];
    gbnf: string;
    genTokens: number;
    threads: number;
    repetitions: number;
    dir?: string;
    beforeSample?: (test: string) => void;
    onSample?: (test: string, tokensPerSecond: number) => void;
  },
): Promise<{ tests: { test: string; value: BenchStat }[]; tokens: Record<string, number> }> {
  const mod = await loadPeerModule<PeerGrammarModule>(options.dir ?? DEFAULT_PEER_DIR);
  const model = await llama.loadModel({ modelPath: options.modelPath });
  try {
    const grammar = await llama.createGrammar({ grammar: options.gbnf });
    const once = async (constrained: boolean): Promise<{ tps: number; n: number }> => {
      const ctx = await model.createContext({ contextSize: options.prompt.length + options.genTokens + 8, threads: options.threads, batchSize: 64 });
      try {
        const seq = ctx.getSequence();
        const grammarEvaluationState = constrained ? new mod.LlamaGrammarEvaluationState({ model, grammar }) : undefined;
        let t0 = 0;
        let n = 0;
        for await (const token of seq.evaluate(options.prompt, { temperature: 0, ...(grammarEvaluationState ? { grammarEvaluationState } : {}) })) {
          void token;
          if (n++ === 0) t0 = performance.now();
          if (n >= options.genTokens) break;
        }
        return { tps: (n - 1) / ((performance.now() - t0) / 1000), n };
      } finally {
        await ctx.dispose();
      }
    };
    await once(false);
    await once(true);
    const samples: Record<string, number[]> = { tgfree: [], tggrammar: [] };
    const tokens: Record<string, number> = {};
    for (let r = 0; r < options.repetitions; r++) {
      for (const test of r % 2 === 0 ? ['tgfree', 'tggrammar'] : ['tggrammar', 'tgfree']) {
        options.beforeSample?.(test);
        const { tps, n } = await once(test === 'tggrammar');
        tokens[test] = n;
        samples[test].push(tps);
        options.onSample?.(test, tps);
      }
    }
    return { tests: Object.entries(samples).map(([test, v]) => ({ test, value: benchStat(v) })), tokens };
  } finally {
    await model.dispose();
  }
}
