// `open-autoglm bench`: llama-bench-style prompt-processing and generation speed of one model file, as a markdown
// table (or JSON).
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import type { CpuVariant } from '../model/model.js';
import { runBench, type BenchResult } from '../tools/bench.js';
import { tokenizeBenchCommand, TOKENIZE_BENCH_USAGE } from './tokenize-bench-command.js';

export interface BenchIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const BENCH_USAGE = `  open-autoglm bench --model FILE [-p 512] [-n 128] [-t THREADS] [-r REPS] [--cpu ref|avx2|avx512]
                     [--backend cpu|vulkan|cuda] [--json]
      Measures prompt processing (ppN) and generation (tgN) speed of a model file, llama-bench style.
${TOKENIZE_BENCH_USAGE}`;

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new AglmError('INVALID_ARGUMENT', `Expected an integer >= ${min} for ${name} but received "${v}"`);
  }
  return n;
}

export function formatSize(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : `${(bytes / (1 << 20)).toFixed(2)} MiB`;
}

export function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(2)} M`;
}

/** The llama-bench markdown table of one result. */
export function benchTable(r: BenchResult): string {
  const variant = /^(\w+)/.exec(r.backendDescription)?.[1] ?? '';
  const rows = r.tests.map((t) => [
    r.model.description,
    formatSize(r.model.sizeBytes),
    formatParams(r.model.params),
    r.backend === 'cpu' ? `CPU ${variant}`.trim() : r.backend.toUpperCase(), // a GPU backend's description starts with its name
    String(r.threads),
    t.test,
    `${t.tokensPerSecond.mean.toFixed(2)} ± ${t.tokensPerSecond.sd.toFixed(2)}`,
  ]);
  const head = ['model', 'size', 'params', 'backend', 'threads', 'test', 't/s'];
  const right = [false, true, true, false, true, true, true];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' | ')} |\n`;
  const rule = `| ${w.map((n, i) => (right[i] ? '-'.repeat(n - 1) + ':' : '-'.repeat(n))).join(' | ')} |\n`;
  return line(head) + rule + rows.map(line).join('');
}

export async function benchCommand(args: string[], io: BenchIo): Promise<number> {
  if (args.includes('--tokenize')) return tokenizeBenchCommand(args, io);
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      p: { type: 'string', short: 'p' },
      n: { type: 'string', short: 'n' },
      t: { type: 'string', short: 't' },
      r: { type: 'string', short: 'r' },
      cpu: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.model || positionals.length > 0) {
    io.err(`Usage:\n${BENCH_USAGE}`);
    return 2;
  }
  const result = await runBench({
    modelPath: values.model,
    promptTokens: int('-p', values.p, 0),
    genTokens: int('-n', values.n, 0),
    threads: int('-t', values.t, 1),
    repetitions: int('-r', values.r, 1),
    cpuVariant: values.cpu as CpuVariant | undefined,
    backend: values.backend,
    onSample: values.json ? undefined : (test, tps) => io.err(`${test}: ${tps.toFixed(2)} t/s\n`),
  });
  if (values.json) io.out(JSON.stringify(result, null, 2) + '\n');
  else io.out(benchTable(result));
  return 0;
}
