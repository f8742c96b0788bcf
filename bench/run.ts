// `npm run bench`: our speed against node-llama-cpp 3.22.1 (llama.cpp) on the same random-weight model files, with
// the same thread counts, in the same run. Each measurement is its own child process (bench/worker.ts), ours and
// the peer's alternating, so peak RSS is per engine and slow drifts of the machine hit both. Writes BENCHMARKS.md.
//   npm run bench -- [--quick] [--only tinyllama|110m] [--reps N] [--threads 2,1] [--no-peer] [--no-write] [--out FILE]
//                    [--batched | --no-batched]   (only / without the many-sequences section: Q4_0 files, 2 threads,
//                    aggregate decode t/s of 1, 2, 4 and 8 sequences at once and the time to a new request's first token)
//                    [--grammar | --no-grammar]   (only / without the structured-output section: Q4_0 files, 2 threads,
//                    greedy decoding without and with a JSON schema's grammar)
//   npm run bench -- --tokenize [--model FILE ...] [--text FILE] [-r REPS] [--no-peer] [--json]   (tokenizer speed)
// (--quick: the 110M files, 2 threads, 2 repetitions, and BENCHMARKS.md is left alone)
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, relative, basename } from 'node:path';
import { parseArgs } from 'node:util';
import { readGguf } from '../lib/gguf/index.js';
import { systemInfo } from '../lib/backends/system-info.js';
import { nativeBinding } from '../lib/native.js';
import { describeModelFile, type BenchModelInfo } from '../lib/tools/bench.js';
import { ensureModel, modelSpec, type BenchModelSpec, type BenchTypeName } from './models.js';
import { DEFAULT_PEER_DIR, ensurePeer, PEER_VERSION, repoRoot } from './peer.js';
import { machineLoad } from './load.js';
import type { WorkerResult } from './worker.js';
import { tokenizeBenchCommand } from '../lib/cli/tokenize-bench-command.js';

// `npm run bench -- --tokenize [...]` is `open-autoglm bench --tokenize [...]` (lib/cli/tokenize-bench-command.ts).
if (process.argv.includes('--tokenize')) {
  process.exit(await tokenizeBenchCommand(process.argv.slice(2), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }));
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    only: { type: 'string' },
    reps: { type: 'string' },
    threads: { type: 'string' },
    pp: { type: 'string', default: '512' },
    tg: { type: 'string', default: '128' },
    'no-peer': { type: 'boolean' },
    'no-write': { type: 'boolean' },
    out: { type: 'string' },
    batched: { type: 'boolean' },
    'no-batched': { type: 'boolean' },
    grammar: { type: 'boolean' },
    'no-grammar': { type: 'boolean' },
  },
});
/** Sections: the main table, many sequences, structured output; --batched / --grammar run only theirs. */
const ONLY = args.batched ? 'batched' : args.grammar ? 'grammar' : undefined;
const BATCHED_COUNTS = [1, 2, 4, 8];
const BATCHED_GEN = 64;
const BATCHED_TTFT = 256;

const PP = Number(args.pp);
const TG = Number(args.tg);
const REPS = Number(args.reps ?? (args.quick ? 2 : 3));
const THREADS = (args.threads ?? (args.quick ? '2' : '2,1')).split(',').map(Number);
const FAMILIES = args.only ? [args.only] : args.quick ? ['110m'] : ['110m', 'tinyllama'];
const TYPES: BenchTypeName[] = ['Q4_0', 'Q8_0', 'F16'];
/** Cores' worth of other processes' CPU above which a sample is measured again. */
const QUIET = 0.1;
const WORKER_TIMEOUT_MS = 15 * 60_000;
const modelsDir = join(repoRoot, '.bench', 'models');
const log = (s: string) => process.stderr.write(s);
const t0 = performance.now();
let waitedMs = 0;
let retriedMs = 0;
/** Most time spent measuring again (beyond it, contaminated samples are kept, flagged where they decide a value). */
const RETRY_BUDGET_MS = 5 * 60_000;

function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Waits (a bounded time) for the machine to be quiet: other processes would compete for the cores. */
async function waitQuiet(): Promise<number> {
  const start = performance.now();
  let load = await machineLoad(500);
  while (load > QUIET && waitedMs + (performance.now() - start) < 4 * 60_000 && performance.now() - start < 60_000) {
    load = await machineLoad(1000);
  }
  waitedMs += performance.now() - start;
  return load;
}

type Mode = 'main' | 'batched' | 'grammar';

function runWorker(engine: 'ours' | 'peer', model: string, threads: number, mode: Mode = 'main'): Promise<WorkerResult> {
  const extra =
    mode === 'batched' ? ['--batched', BATCHED_COUNTS.join(','), '--gen', String(BATCHED_GEN), '--ttft', String(BATCHED_TTFT)]
    : mode === 'grammar' ? ['--grammar', '--reps', '3']
    : ['--reps', '1'];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'bench', 'worker.ts'), '--engine', engine, '--model', model, '--threads', String(threads),
      '--pp', String(PP), '--tg', String(TG), '--peer-dir', DEFAULT_PEER_DIR, ...extra],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as WorkerResult;
        if (r.error) throw new Error(r.error);
        resolve(r);
      } catch (e) {
        const errLines = err.split('\n').filter((l) => l.trim() && !/^npm warn/.test(l));
        const message = errLines.find((l) => /Error|error:/.test(l)) ?? errLines.slice(-3).join(' | ');
        const reason = e instanceof Error && line ? e.message : `exit ${code}: ${message.trim()}`;
        resolve({ engine, model, threads, tps: {}, samples: {}, foreignLoad: {}, warmupSeconds: NaN, peakRssBytes: NaN, backend: '', error: reason });
      }
    });
  });
}

/**
 * DRAM read bandwidth with `threads` threads now, in GB/s: on this kind of VM the two-thread figure moves between
 * modes (e.g. ~33 and ~55 GB/s) from one process to the next, so each measurement gets its own, taken in this (idle)
 * parent process right before and after the worker runs (not in the worker, whose peak RSS it would raise).
 */
async function probeBandwidth(threads: number): Promise<number> {
  return nativeBinding().measureReadBandwidth(512 << 20, threads, 4);
}

/** One measurement, again (once, within RETRY_BUDGET_MS in all) when other processes used the CPU meanwhile. */
async function measure(engine: 'ours' | 'peer', model: string, threads: number, mode: Mode = 'main'): Promise<WorkerResult> {
  let best: WorkerResult | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0 && retriedMs > RETRY_BUDGET_MS) break;
    await waitQuiet();
    const s0 = performance.now();
    const bwBefore = await probeBandwidth(threads);
    const r = await runWorker(engine, model, threads, mode);
    r.bandwidth = (bwBefore + (await probeBandwidth(threads))) / 2;
    if (attempt > 0) retriedMs += performance.now() - s0;
    if (r.error) {
      log(`  ${engine} failed: ${r.error.split('\n')[0]}\n`);
      if (!best) best = r;
      continue;
    }
    const foreign = Math.max(0, ...Object.values(r.foreignLoad).flat().filter(Number.isFinite));
    if (!best || best.error || foreign < Math.max(0, ...Object.values(best.foreignLoad).flat().filter(Number.isFinite))) best = r;
    if (foreign <= QUIET) break;
    log(`  (other processes used ${foreign.toFixed(2)} cores meanwhile: measuring again)\n`);
  }
  return best!;
}

interface Row {
  spec: BenchModelSpec;
  info: BenchModelInfo;
  threads: number;
  ours: WorkerResult[];
  peer: WorkerResult[];
  bandwidth: number;
}

/**
 * The engine's speed on a test: the median of the samples taken while other processes left the cores alone, or,
 * with fewer than two such samples, the best sample (interference only slows a run down), flagged.
 */
function estimate(rs: WorkerResult[], test: string): { value: number; flagged: boolean } {
  const all: { tps: number; load: number }[] = [];
  for (const r of rs) {
    if (r.error) continue;
    (r.samples[test] ?? []).forEach((tps, i) => all.push({ tps, load: r.foreignLoad[test]?.[i] ?? NaN }));
  }
  const clean = all.filter((x) => !(x.load > QUIET));
  if (clean.length >= 2 || (clean.length === all.length && all.length > 0)) return { value: median(clean.map((x) => x.tps)), flagged: false };
  return { value: all.length ? Math.max(...all.map((x) => x.tps)) : NaN, flagged: all.length > 0 };
}
function stat(rs: WorkerResult[], test: string): number {
  return estimate(rs, test).value;
}
function rss(rs: WorkerResult[]): number {
  return median(rs.filter((r) => !r.error).map((r) => r.peakRssBytes));
}
function maxForeign(rs: WorkerResult[]): number {
  return Math.max(0, ...rs.flatMap((r) => Object.values(r.foreignLoad).flat()).filter(Number.isFinite));
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : 1) : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '–');
const mib = (b: number) => (Number.isFinite(b) ? `${Math.round(b / 1048576)}` : '–');

/** Weight bytes read per generated token: every tensor, except that only one row of an untied embedding table is. */
function bytesPerToken(info: BenchModelInfo): number {
  return info.sizeBytes - (info.tiedOutput ? 0 : info.tokenEmbeddingBytes * (1 - 1 / Math.max(1, info.vocabSize)));
}

function table(rows: Row[]): string {
  const head = [
    'file', 'type', 'threads',
    `pp${PP} ours`, `pp${PP} peer`, 'ratio',
    `tg${TG} ours`, `tg${TG} peer`, 'ratio',
    'tg roofline t/s', `tg % roofline ours`, 'peer',
    'peak RSS MiB ours', 'peer', 'ratio',
  ];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const e = (rs: WorkerResult[], test: string) => estimate(rs, test);
    const ppE = [e(r.ours, `pp${PP}`), e(r.peer, `pp${PP}`)];
    const tgE = [e(r.ours, `tg${TG}`), e(r.peer, `tg${TG}`)];
    const pp = ppE.map((x) => x.value);
    const tg = tgE.map((x) => x.value);
    const fl = (x: { value: number; flagged: boolean }) => `${f1(x.value)}${x.flagged ? '*' : ''}`;
    const roof = (r.bandwidth * 1e9) / bytesPerToken(r.info);
    const mem = [rss(r.ours), rss(r.peer)];
    // Each run's tg against the roofline of the bandwidth measured around that run (see probeBandwidth).
    const pctOf = (rs: WorkerResult[]) => {
      const xs = rs.filter((w) => !w.error && (w.bandwidth ?? 0) > 0 && Number.isFinite(w.tps[`tg${TG}`]));
      if (xs.length === 0) return NaN;
      return median(xs.map((w) => (w.tps[`tg${TG}`] * bytesPerToken(r.info)) / (w.bandwidth! * 1e9)));
    };
    const pctE = [pctOf(r.ours), pctOf(r.peer)];
    const pct = (i: number) => (Number.isFinite(pctE[i]) ? `${Math.round(100 * pctE[i])}%` : '–');
    lines.push(
      `| ${basename(r.spec.file)} | ${r.info.type} | ${r.threads} | ${fl(ppE[0])} | ${fl(ppE[1])} | ${ratio(pp[0], pp[1])} | ` +
        `${fl(tgE[0])} | ${fl(tgE[1])} | ${ratio(tg[0], tg[1])} | ${f1(roof)} | ${pct(0)} | ${pct(1)} | ` +
        `${mib(mem[0])} | ${mib(mem[1])} | ${ratio(mem[0], mem[1])} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** The many-sequences table: aggregate decode t/s per sequence count, the 8-vs-1 scaling, and the new request's TTFT. */
function grammarTable(rows: Row[]): string {
  const head = ['file', 'threads', 'free ours', 'grammar ours', 'loss ours', 'free peer', 'grammar peer', 'loss peer', 'grammar ratio'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 1 ? '---' : '---:')).join(' | ')} |`];
  const pct = (g: number, f: number) => (Number.isFinite(g) && Number.isFinite(f) ? `${((1 - g / f) * 100).toFixed(1)}%` : '');
  for (const r of rows) {
    const med = (rs: WorkerResult[], test: string) => median(rs.flatMap((w) => w.samples[test] ?? []));
    const fo = med(r.ours, 'tgfree'), go = med(r.ours, 'tggrammar'), fp = med(r.peer, 'tgfree'), gp = med(r.peer, 'tggrammar');
    lines.push(`| ${[basename(r.spec.file), String(r.threads), f1(fo), f1(go), pct(go, fo), f1(fp), f1(gp), pct(gp, fp), ratio(go, gp)].join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

function batchedTable(rows: Row[]): string {
  const head = ['file', 'threads'];
  for (const S of BATCHED_COUNTS) head.push(`${S} seq ours`, 'peer', 'ratio');
  head.push(`${Math.max(...BATCHED_COUNTS)} vs 1 ours`, 'peer', `TTFT ms ours`, 'peer', 'ratio');
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 1 ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const v = (rs: WorkerResult[], test: string) => estimate(rs, test).value;
    const cells = [basename(r.spec.file), String(r.threads)];
    for (const S of BATCHED_COUNTS) {
      const o = v(r.ours, `bd${S}`), p = v(r.peer, `bd${S}`);
      cells.push(f1(o), f1(p), ratio(o, p));
    }
    const top = Math.max(...BATCHED_COUNTS);
    cells.push(ratio(v(r.ours, `bd${top}`), v(r.ours, 'bd1')), ratio(v(r.peer, `bd${top}`), v(r.peer, 'bd1')));
    // TTFT: lower is better; the ratio is peer / ours so that above 1 is faster, like the others.
    const to = median(r.ours.flatMap((w) => w.samples.ttft ?? [])), tp = median(r.peer.flatMap((w) => w.samples.ttft ?? []));
    cells.push(f1(to), f1(tp), ratio(tp, to));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

function autoNote(rows: Row[]): string {
  const out: string[] = [];
  for (const test of [`pp${PP}`, `tg${TG}`]) {
    const rs = rows.map((r) => ({ r, x: stat(r.ours, test) / stat(r.peer, test) })).filter((e) => Number.isFinite(e.x));
    if (rs.length === 0) continue;
    const slower = rs.filter((e) => e.x < 0.95).map((e) => `${basename(e.r.spec.file)} ×${e.r.threads} (${e.x.toFixed(2)})`);
    const lo = Math.min(...rs.map((e) => e.x)), hi = Math.max(...rs.map((e) => e.x));
    out.push(`${test}: ours/peer from ${lo.toFixed(2)} to ${hi.toFixed(2)}${slower.length ? `; slower than the peer on ${slower.join(', ')}` : '; never more than 5% slower'}.`);
  }
  for (const t of [...new Set(rows.map((r) => r.threads))]) {
    const bws = rows.filter((r) => r.threads === t).flatMap((r) => [...r.ours, ...r.peer]).map((w) => w.bandwidth ?? NaN).filter(Number.isFinite);
    if (bws.length) out.push(`DRAM read bandwidth probed around each ${t}-thread run: ${Math.min(...bws).toFixed(1)} to ${Math.max(...bws).toFixed(1)} GB/s (median ${median(bws).toFixed(1)}).`);
  }
  const errs = rows.flatMap((r) => [...r.ours, ...r.peer]).filter((r) => r.error);
  if (errs.length) out.push(`${errs.length} measurement(s) failed: ${[...new Set(errs.map((e) => `${e.engine}: ${e.error!.split('\n')[0]}`))].join('; ')}.`);
  const flagged = rows.some((r) => [`pp${PP}`, `tg${TG}`].some((t) => estimate(r.ours, t).flagged || estimate(r.peer, t).flagged));
  const noisy = rows.filter((r) => maxForeign([...r.ours, ...r.peer]) > QUIET).length;
  out.push(
    flagged
      ? `\* fewer than two samples ran with other processes using at most ${QUIET} core: the best sample is shown (less reliable).`
      : noisy
        ? `Samples during which other processes used more than ${QUIET} core were measured again or left out of the medians.`
        : `No sample ran while other processes used more than ${QUIET} core.`,
  );
  return out.map((s) => `- ${s}`).join('\n') + '\n';
}

async function main(): Promise<void> {
  const info = systemInfo();
  const brand = info.cpu.brand || cpus()[0]?.model || 'unknown CPU';
  log(`open-autoglm bench: ${brand}, ${availableParallelism()} cores; pp${PP}/tg${TG}, threads ${THREADS.join(',')}, ${REPS} repetitions\n`);

  // 1. Model files.
  const specs = FAMILIES.flatMap((f) => (ONLY ? (['Q4_0'] as BenchTypeName[]) : TYPES).map((t) => modelSpec(modelsDir, f, t)));
  for (const s of specs) await ensureModel(s, log);

  // 2. The peer.
  let peerOk = false;
  let peerNote = '';
  if (!args['no-peer']) {
    const p = await ensurePeer(DEFAULT_PEER_DIR, { log });
    peerOk = p.ok;
    if (!p.ok) {
      peerNote = `node-llama-cpp ${PEER_VERSION} could not be installed (${p.reason}): peer columns are empty.`;
      log(`${peerNote}\n`);
    }
  } else peerNote = 'Run with --no-peer: peer columns are empty.';

  // 3. DRAM read bandwidth.
  // The best of 3 rounds of 8 passes each: on a VM the neighbours' memory traffic only ever lowers a reading.
  const bandwidth: Record<number, number> = {};
  const bwThreads = [...new Set([1, ...THREADS])].sort();
  for (let round = 0; round < 3; round++) {
    for (const t of bwThreads) {
      await waitQuiet();
      bandwidth[t] = Math.max(bandwidth[t] ?? 0, await nativeBinding().measureReadBandwidth(1 << 30, t, 8));
    }
  }
  for (const t of bwThreads) log(`DRAM read bandwidth, ${t} thread(s): ${bandwidth[t].toFixed(1)} GB/s\n`);

  // 4. Alternating measurements.
  const rows: Row[] = [];
  const batchedRows: Row[] = [];
  for (const spec of ONLY ? [] : specs) {
    const minfo = describeModelFile(spec.file, await readGguf(spec.file));
    for (const threads of THREADS) {
      const row: Row = { spec, info: minfo, threads, ours: [], peer: [], bandwidth: bandwidth[threads] };
      for (let rep = 0; rep < REPS; rep++) {
        const order: ('ours' | 'peer')[] = rep % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours'];
        for (const engine of order) {
          if (engine === 'peer' && !peerOk) continue;
          const r = await measure(engine, spec.file, threads);
          row[engine].push(r);
          if (!r.error) {
            log(`${basename(spec.file)} ×${threads} ${engine.padEnd(4)} ` +
              Object.entries(r.tps).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('  ') + `  RSS ${mib(r.peakRssBytes)} MiB\n`);
          }
        }
      }
      const probed = median([...row.ours, ...row.peer].map((w) => w.bandwidth ?? NaN));
      if (Number.isFinite(probed)) row.bandwidth = probed;
      rows.push(row);
    }
  }

  /** A section over the Q4_0 files at 2 threads: REPS alternating runs of each engine in `mode`, each logged. */
  const q4Rows = async (mode: Mode, line: (r: WorkerResult) => string): Promise<Row[]> => {
    const out: Row[] = [];
    for (const spec of specs.filter((x) => x.type === 'Q4_0')) {
      const minfo = describeModelFile(spec.file, await readGguf(spec.file));
      const threads = 2;
      const row: Row = { spec, info: minfo, threads, ours: [], peer: [], bandwidth: bandwidth[threads] ?? NaN };
      for (let rep = 0; rep < REPS; rep++) {
        const order: ('ours' | 'peer')[] = rep % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours'];
        for (const engine of order) {
          if (engine === 'peer' && !peerOk) continue;
          const r = await measure(engine, spec.file, threads, mode);
          row[engine].push(r);
          if (!r.error) log(`${basename(spec.file)} ×${threads} ${engine.padEnd(4)} ${line(r)}\n`);
        }
      }
      out.push(row);
    }
    return out;
  };

  // 4b. Many sequences at once: the Q4_0 files, 2 threads.
  if (!args['no-batched'] && (!ONLY || ONLY === 'batched')) {
    batchedRows.push(
      ...(await q4Rows('batched', (r) => Object.entries(r.tps).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('  '))),
    );
  }

  // 4c. Structured output: the Q4_0 files, 2 threads, decoding without and with a JSON schema's grammar.
  const grammarRows: Row[] = [];
  if (!args['no-grammar'] && (!ONLY || ONLY === 'grammar')) {
    grammarRows.push(...(await q4Rows('grammar', (r) => `free ${f1(r.tps.tgfree)}  grammar ${f1(r.tps.tggrammar)}`)));
  }

  // 5. Report.
  const minutes = (performance.now() - t0) / 60000;
  const ourBackend = [...rows, ...batchedRows, ...grammarRows].flatMap((r) => r.ours).find((r) => !r.error)?.backend ?? '';
  const tableText = rows.length ? table(rows) : '';
  const note = rows.length ? autoNote(rows) : '';
  const grammarText = grammarRows.length
    ? `Structured output: greedy decoding of ${TG} tokens after an 8-token prompt, free (end of generation never chosen) and held to the ` +
      `grammar of a JSON schema (an array of at least 64 objects {id: integer 0-999, name: string of up to 16, ok: boolean}; ` +
      `jsonSchemaToGbnf, the same GBNF text for the peer's llama.createGrammar), a fresh grammar state per run, tokens/s from the first ` +
      `token to the last; medians over ${REPS} alternating processes of 3 runs each. Loss = 1 - grammar / free. The random-weight model's ` +
      `own picks are almost never valid JSON, so nearly every token takes the whole-vocabulary path (the worst case).\n\n` +
      grammarTable(grammarRows)
    : '';
  const batchedText = batchedRows.length
    ? `Many sequences at once (${BATCHED_COUNTS.join(', ')}): aggregate tokens/s of that many sequences each generating ${BATCHED_GEN} greedy ` +
      `tokens on one context after its own 8-token prompt (the peer: one context with that many \`getSequence()\` sequences), medians of ` +
      `${REPS} alternating runs; "8 vs 1" = the 8-sequence aggregate over the 1-sequence speed; TTFT = milliseconds from a new ` +
      `${BATCHED_TTFT}-token request to its first token while ${Math.max(...BATCHED_COUNTS) - 1} sequences decode (ratio: peer / ours, above 1 is faster).\n\n` +
      batchedTable(batchedRows)
    : '';
  process.stdout.write('\n' + tableText + '\n' + note + (batchedText ? '\n' + batchedText : '') + (grammarText ? '\n' + grammarText : ''));
  const resultsDir = join(repoRoot, '.bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(
    join(resultsDir, `${stamp}.json`),
    JSON.stringify({ bandwidth, rows: [...rows, ...batchedRows, ...grammarRows].map((r) => ({ ...r, spec: { ...r.spec, shape: undefined } })) }, null, 1),
  );

  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const section =
    `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: \`${command}\`\n\n` +
    `Machine: ${brand}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, DRAM read ` +
    Object.entries(bandwidth).map(([t, g]) => `${g.toFixed(1)} GB/s (${t} thread${t === '1' ? '' : 's'})`).join(', ') +
    `; Node ${process.version}. Ours: ${ourBackend.split(':')[0] || '?'} kernels. Peer: node-llama-cpp ${PEER_VERSION} CPU build (its defaults: ` +
    `flash attention auto, F16 KV cache, mmap). ` +
    (rows.length
      ? `pp${PP} and tg${TG} in tokens/s, medians of ${REPS} alternating runs, each in its own process, over the samples during ` +
        `which other processes used at most ${QUIET} core; ratio = ours / peer; peak RSS = VmHWM of that process (mapped model ` +
        `pages included). `
      : '') +
    `Total time ${minutes.toFixed(1)} min` +
    `${waitedMs > 1000 ? `, ${(waitedMs / 1000).toFixed(0)} s of it waiting for other processes to leave the cores` : ''}.\n\n` +
    (rows.length ? tableText + '\n' + note : '') + (peerNote ? `- ${peerNote}\n` : '') +
    [batchedText, grammarText].filter((t) => t).map((t) => (rows.length ? '\n' : '') + t).join('\n') + '\n';
  if (args['no-write'] || (args.quick && !args.out)) return;
  const path = args.out ?? join(repoRoot, 'BENCHMARKS.md');
  const marker = '<!-- runs: newest first; bench/run.ts inserts each run below this line -->\n';
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : '';
  // Never rewrite what is there: without the marker, a section for the runs (and the method) goes at the end.
  if (!doc.includes(marker)) {
    doc = doc.trim()
      ? `${doc.trimEnd()}\n\n## Runs of \`npm run bench\`\n\n${HEADER.replace(/^# Benchmarks\n\n/, '')}\n${marker}`
      : `${HEADER}\n${marker}`;
  }
  const i = doc.indexOf(marker) + marker.length;
  writeFileSync(path, doc.slice(0, i) + '\n' + section + doc.slice(i).replace(/^\n+/, ''));
  log(`wrote ${relative(process.cwd(), path)}\n`);
}

const HEADER = `# Benchmarks

Our speed against [node-llama-cpp](https://github.com/withcatai/node-llama-cpp) ${PEER_VERSION} (llama.cpp inside, its
prebuilt CPU binaries), measured by \`npm run bench\` (bench/run.ts; see bench/README.md): the same model files, the
same thread counts, the same run, each measurement in its own process with ours and the peer's alternating.

- Model files: random-weight llama GGUFs of real shapes written by our writer (lib/tools/random-model.ts): TinyLlama
  1.1B (dim 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000) and a 110M llama (dim 768, 12 layers,
  12 heads, FFN 2048, vocab 32000, tied output), each in Q4_0, Q8_0 and F16. Speed does not depend on the weights
  being trained.
- pp512: 512 fixed pseudo-random tokens evaluated in one call in a cleared context, logits of the last one only
  (llama-bench's pp). tg128: 128 single-token steps from an empty context, each followed by a greedy pick (llama-bench's
  tg). Both after a warm-up that pages in every weight.
- tg % roofline: tg t/s over (measured DRAM read bandwidth at that thread count / weight bytes read per token); all
  tensor bytes count, except an untied token-embedding table, of which one row is read per token. The KV cache and
  activations are left out (a few MB per token here). The bandwidth probe is a plain summing loop over a large
  buffer, a practical, not a theoretical, ceiling: an engine can come out slightly above 100%. On this VM the
  2-thread reading moves between two modes from one process to the next (~33 and ~55 GB/s), so since the second run
  each measurement is set against a probe taken right before and after it (the mean of the two), and the roofline
  column shows the median of those; the run's header still gives the best reading at its start.
- Peak RSS: VmHWM of the measuring process: Node itself, the engine, and the resident pages of the mapped model.
- The logits agree with llama.cpp's (test/peer/peer-logits.test.ts).
`;

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
