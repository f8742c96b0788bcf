// The peer engine: node-llama-cpp 3.22.1 (llama.cpp inside), installed on demand into a scratch folder
// (.bench/peer/, gitignored), never as a dependency of this package. Used by the benchmark and the peer logits test.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchStat, type BenchStat } from '../lib/tools/bench.js';

export const PEER_VERSION = '3.22.1';
export const repoRoot = resolve(import.meta.dirname, '..');
/** Where the peer is installed: OPEN_AUTOGLM_PEER_DIR, else .bench/peer/ in the repository. */
export const DEFAULT_PEER_DIR = process.env.OPEN_AUTOGLM_PEER_DIR || join(repoRoot, '.bench', 'peer');

/** The prebuilt-binary package of node-llama-cpp for this platform (CPU builds; no GPU package is needed). */
export function peerBinaryPackage(): string {
  const os = process.platform === 'darwin' ? 'mac' : process.platform === 'win32' ? 'win' : process.platform;
  const arch = process.platform === 'darwin' && process.arch === 'arm64' ? 'arm64-metal' : process.arch;
  return `@node-llama-cpp/${os}-${arch}`;
}

function entryPath(dir: string): string {
  return join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
}

function installedVersion(dir: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

export type PeerInstall = { ok: true; dir: string; installed: boolean } | { ok: false; dir: string; reason: string };

/**
 * Makes sure node-llama-cpp PEER_VERSION is in `dir` (installing it with npm when missing: no install scripts, no
 * binary download by node-llama-cpp itself, no optional GPU packages). Never throws: says why it failed instead.
 */
export async function ensurePeer(dir = DEFAULT_PEER_DIR, options: { timeoutMs?: number; log?: (s: string) => void } = {}): Promise<PeerInstall> {
  if (installedVersion(dir) === PEER_VERSION && existsSync(entryPath(dir))) return { ok: true, dir, installed: false };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }) + '\n');
  const args = [
    'install', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund', '--save-exact',
    `node-llama-cpp@${PEER_VERSION}`, `${peerBinaryPackage()}@${PEER_VERSION}`,
  ];
  options.log?.(`installing node-llama-cpp@${PEER_VERSION} into ${dir} ...\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = await new Promise<{ code: number | null; output: string }>((done) => {
    let output = '';
    const child = spawn(npm, args, {
      cwd: dir,
      env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ code: -1, output: output + String(e) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
  if (result.code !== 0 || installedVersion(dir) !== PEER_VERSION) {
    const lines = result.output.split('\n').map((l) => l.trim()).filter(Boolean);
    const errors = lines.filter((l) => /^npm (error|ERR!)/.test(l)).map((l) => l.replace(/^npm (error|ERR!)\s*/, '')).filter(Boolean);
    const why = (errors.length ? errors.slice(0, 3) : lines.slice(-3)).join('; ');
    return { ok: false, dir, reason: `npm install exited with ${result.code}: ${why}` };
  }
  return { ok: true, dir, installed: true };
}

// The parts of node-llama-cpp's API used here (typed locally: the package is not a dependency).
export interface PeerSequence {
  clearHistory(): Promise<void>;
  evaluate(tokens: number[], options: { temperature: number; yieldEogToken?: boolean }): AsyncGenerator<number, void, unknown>;
  controlledEvaluate(
    input: (number | [number, { generateNext?: { token?: boolean; logits?: boolean; options?: { temperature?: number } } }])[],
  ): Promise<({ next: { token?: number | null; logits?: Map<number, number> } } | undefined)[]>;
}
export interface PeerContext {
  getSequence(): PeerSequence;
  dispose(): Promise<void>;
}
export interface PeerModel {
  createContext(options: {
    contextSize: number;
    threads: number;
    batchSize: number;
    sequences?: number;
    flashAttention?: boolean | 'auto';
    experimentalKvCacheKeyType?: number;
    experimentalKvCacheValueType?: number;
  }): Promise<PeerContext>;
  dispose(): Promise<void>;
}
export interface PeerLlama {
  loadModel(options: { modelPath: string }): Promise<PeerModel>;
  readonly systemInfo: string;
  dispose(): Promise<void>;
}

/** Loads the installed peer's CPU build (no GPU, never builds from source). */
export async function loadPeer(dir = DEFAULT_PEER_DIR): Promise<PeerLlama> {
  const mod = (await import(pathToFileURL(entryPath(dir)).href)) as {
    getLlama(o: { gpu: false; build: 'never'; logLevel: 'error'; progressLogs?: boolean }): Promise<PeerLlama>;
  };
  return mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
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
