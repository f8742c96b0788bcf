// Shared test fixtures: reference data paths, the CPU variants this machine runs, temp dirs, array comparisons.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemInfo } from '../../lib/index.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const defaultModelPath = join(repoRoot, 'models', 'stories260K.gguf');
export const storiesDir = join(repoRoot, 'test', 'fixtures', 'stories260K');

export interface GreedyReference {
  prompt: string;
  promptTokens: number[];
  generatedTokens: number[];
  text: string;
}

export function greedyReference(): GreedyReference {
  return JSON.parse(readFileSync(join(storiesDir, 'greedy.json'), 'utf8'));
}

export function logitsReference(): { tokens: number[]; nVocab: number; logits: Float32Array } {
  const meta = JSON.parse(readFileSync(join(storiesDir, 'logits.json'), 'utf8'));
  const raw = readFileSync(join(storiesDir, 'logits.f32'));
  const logits = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (logits.length !== meta.n_tokens * meta.n_vocab) throw new Error('logits.f32 has the wrong size');
  return { tokens: meta.tokens, nVocab: meta.n_vocab, logits };
}

/** The CPU kernel variants this machine can run (ref always). */
export function runnableVariants(): ('ref' | 'avx2' | 'avx512')[] {
  return systemInfo()
    .cpuVariants.filter((v) => v.available)
    .map((v) => v.name as 'ref' | 'avx2' | 'avx512');
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function argmax(a: ArrayLike<number>, from = 0, to = a.length): number {
  let best = from;
  for (let i = from; i < to; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

export function tempDir(t: { after(fn: () => void): void }, prefix = 'aglm-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let distChecked = false;
/** Builds dist/ (the published JS) once per test process when it is missing, or always under CI. */
export function ensureDist(): string {
  if (!distChecked && (process.env.CI === 'true' || !existsSync(join(repoRoot, 'dist', 'index.cjs')))) {
    const r = spawnSync(process.execPath, ['scripts/build-ts.mjs'], { cwd: repoRoot, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building dist/ failed: ${r.stderr}${r.stdout}`);
  }
  distChecked = true;
  return join(repoRoot, 'dist', 'index.js');
}
