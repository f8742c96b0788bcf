// Builds mtmd-ref (mtmd-ref.cpp next to this file) against llama.cpp's libllama + libmtmd, once, into a gitignored
// cache (.bench/llama-mtmd/, or OPEN_AUTOGLM_MTMD_DIR). The llama.cpp source is the gitRelease.bundle shipped inside
// the peer package (node-llama-cpp in .bench/peer/, installed on demand by ensurePeer): cloned into the cache, then a
// static CPU-only build of ggml + llama + mtmd + mtmd-ref (about 3 minutes on 2 cores). Later calls return at once
// while the binary and its stamp (llama.cpp commit + driver sources) match. Never throws: says why it cannot build.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_PEER_DIR, ensurePeer } from '../../../lib/tools/peer-install.js';

const here = import.meta.dirname;
const repoRoot = resolve(here, '..', '..', '..');
/** Cache folder: llama.cpp/ (clone of the bundle), build/ (cmake), stamp.json. */
export const MTMD_CACHE_DIR = process.env.OPEN_AUTOGLM_MTMD_DIR || join(repoRoot, '.bench', 'llama-mtmd');

export type MtmdRefBuild = { ok: true; bin: string } | { ok: false; reason: string };

export interface BuildOptions {
  /** Progress lines (clone, configure, build). Default: silent. */
  log?: (line: string) => void;
  /** Parallel compile jobs. Default: the machine's available parallelism. */
  jobs?: number;
  /** Whole-build limit. Default 40 minutes. */
  timeoutMs?: number;
}

interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number, log?: (s: string) => void): Promise<RunResult> {
  return new Promise((done) => {
    let output = '';
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const take = (d: Buffer) => {
      const s = d.toString();
      output += s;
      if (output.length > 4_000_000) output = output.slice(-2_000_000);
      if (log) for (const line of s.split('\n')) if (line.trim()) log(line);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ code: -1, output: output + String(e) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code: signal ? -1 : code, output: signal ? `${output}\nkilled by ${signal} (timeout ${timeoutMs} ms)` : output });
    });
  });
}

/** The lines that say why a tool failed (compiler/cmake errors first, else the tail). */
function why(output: string): string {
  const lines = output.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const errors = lines.filter((l) => /error|Error|ERROR|not found|No such file|killed by/.test(l));
  return (errors.length ? errors.slice(0, 6) : lines.slice(-6)).join(' | ').slice(0, 2000);
}

function hasTool(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function sha256(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A cross-process lock (mkdir), so that two test processes do not build into the same folder at once. */
async function withLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T | { ok: false; reason: string }> {
  const lock = join(dir, '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return { ok: false, reason: `cannot lock ${lock}: ${String(e)}` };
      let pid = 0;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
        pid = Number(readFileSync(join(lock, 'pid'), 'utf8')) || 0;
      } catch {
        // just created (no pid yet) or just released
      }
      let alive = pid === 0 && age < 60_000;
      if (pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (err) {
          alive = (err as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (!alive) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) return { ok: false, reason: `timed out waiting for another build (lock ${lock})` };
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

let pending: Promise<MtmdRefBuild> | undefined;

/**
 * Returns the mtmd-ref binary, building it first when missing or stale (needs git, cmake and a C++17 compiler; installs
 * the node-llama-cpp peer into .bench/peer/ with npm when its bundle is not there yet).
 */
export async function buildMtmdRef(options: BuildOptions = {}): Promise<MtmdRefBuild> {
  pending ??= build(options).finally(() => {
    pending = undefined;
  });
  return pending;
}

async function build(options: BuildOptions): Promise<MtmdRefBuild> {
  const log = options.log;
  const timeoutMs = options.timeoutMs ?? 40 * 60_000;
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const srcDir = MTMD_CACHE_DIR;
  const llamaDir = join(srcDir, 'llama.cpp');
  const buildDir = join(srcDir, 'build');
  const bin = join(buildDir, 'bin', process.platform === 'win32' ? 'mtmd-ref.exe' : 'mtmd-ref');
  const stampPath = join(srcDir, 'stamp.json');
  const driverFiles = ['mtmd-ref.cpp', 'CMakeLists.txt'].map((f) => join(here, f));

  if (process.platform === 'win32') return { ok: false, reason: 'mtmd-ref is only built on Linux/macOS' };
  for (const f of driverFiles) if (!existsSync(f)) return { ok: false, reason: `driver source missing: ${f}` };
  const driverHash = sha256(driverFiles.map((f) => readFileSync(f, 'utf8')));

  // fast path: built before from the same sources
  const stamp = readJson(stampPath);
  if (existsSync(bin) && stamp?.driver === driverHash && typeof stamp.commit === 'string') return { ok: true, bin };

  if (!hasTool('git')) return { ok: false, reason: 'git is not on PATH (needed to unpack the llama.cpp bundle)' };
  if (!hasTool('cmake')) return { ok: false, reason: 'cmake is not on PATH' };

  // the llama.cpp source: node-llama-cpp's gitRelease.bundle
  const peer = await ensurePeer(DEFAULT_PEER_DIR, { timeoutMs: Math.min(left(), 10 * 60_000), log });
  if (!peer.ok) return { ok: false, reason: `node-llama-cpp (source of the llama.cpp bundle) is not available: ${peer.reason}` };
  const bundle = join(peer.dir, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
  if (!existsSync(bundle)) return { ok: false, reason: `no llama.cpp bundle at ${bundle}` };
  const heads = await run('git', ['bundle', 'list-heads', bundle], repoRoot, left());
  const commit = /^([0-9a-f]{40})\s+HEAD$/m.exec(heads.output)?.[1] ?? /^([0-9a-f]{40})\s/m.exec(heads.output)?.[1];
  if (heads.code !== 0 || !commit) return { ok: false, reason: `cannot read the bundle's head: ${why(heads.output)}` };

  mkdirSync(srcDir, { recursive: true });
  return withLock(srcDir, left(), async (): Promise<MtmdRefBuild> => {
    // another process may have finished the build while we waited for the lock
    const again = readJson(stampPath);
    if (existsSync(bin) && again?.driver === driverHash && again?.commit === commit) return { ok: true, bin };

    // (re)clone when missing or from another llama.cpp release (then the old build folder is stale too)
    const have = existsSync(join(llamaDir, '.git'))
      ? (await run('git', ['rev-parse', 'HEAD'], llamaDir, left())).output.trim()
      : '';
    if (have !== commit || !existsSync(join(llamaDir, 'tools', 'mtmd', 'mtmd.h'))) {
      rmSync(llamaDir, { recursive: true, force: true });
      rmSync(buildDir, { recursive: true, force: true });
      log?.(`cloning llama.cpp ${commit.slice(0, 10)} from ${bundle}`);
      const clone = await run('git', ['-c', 'advice.detachedHead=false', 'clone', '-q', bundle, llamaDir], srcDir, left());
      if (clone.code !== 0) return { ok: false, reason: `git clone of ${bundle} failed: ${why(clone.output)}` };
      const co = await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', commit], llamaDir, left());
      if (co.code !== 0) return { ok: false, reason: `git checkout ${commit} failed: ${why(co.output)}` };
    } else if (stamp?.commit !== commit) {
      rmSync(buildDir, { recursive: true, force: true });
    }

    if (!existsSync(join(buildDir, 'CMakeCache.txt'))) {
      log?.('configuring (cmake)');
      const cfg = await run(
        'cmake',
        ['-S', here, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', `-DLLAMA_CPP_DIR=${llamaDir}`, '-Wno-dev'],
        srcDir,
        left(),
        log,
      );
      if (cfg.code !== 0) {
        rmSync(buildDir, { recursive: true, force: true });
        return { ok: false, reason: `cmake configure failed: ${why(cfg.output)}` };
      }
    }
    const jobs = options.jobs ?? Math.max(1, availableParallelism());
    log?.(`building mtmd-ref (ggml + llama + mtmd, -j${jobs}; a few minutes the first time)`);
    const t0 = Date.now();
    const b = await run('cmake', ['--build', buildDir, '--target', 'mtmd-ref', '-j', String(jobs)], srcDir, left(), log);
    if (b.code !== 0 || !existsSync(bin)) return { ok: false, reason: `build failed: ${why(b.output)}` };
    const probe = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) return { ok: false, reason: `built ${bin} but it does not run: ${probe.error ?? probe.stderr}` };
    writeFileSync(stampPath, JSON.stringify({ commit, driver: driverHash, builtAt: new Date().toISOString(), buildMs: Date.now() - t0 }, null, 2) + '\n');
    return { ok: true, bin };
  });
}

// ---- running it ----------------------------------------------------------------------------------------------

export interface MtmdRefArgs {
  model: string;
  /** Omit with textOnly. */
  mmproj?: string;
  image?: string;
  /** Must contain the media marker (<__media__>) once, unless textOnly. */
  prompt: string;
  out: string;
  textOnly?: boolean;
  threads?: number;
  nPredict?: number;
  nCtx?: number;
  nBatch?: number;
  nUbatch?: number;
  flashAttn?: 'off' | 'on' | 'auto';
  /** KV cache type (llama.cpp default f16; f32 for the closest reference). */
  cacheType?: 'f16' | 'f32' | 'bf16';
  addSpecial?: boolean;
  parseSpecial?: boolean;
  ignoreEos?: boolean;
  pixels?: boolean;
  imageMinTokens?: number;
  imageMaxTokens?: number;
  timeoutMs?: number;
}

/** meta.json as written by mtmd-ref (see the header of mtmd-ref.cpp). */
export interface MtmdRefMeta {
  n_vocab: number;
  n_embd: number;
  n_embd_inp: number;
  use_mrope: boolean;
  bitmap?: { nx: number; ny: number };
  chunks: {
    index: number;
    type: 'text' | 'image' | 'audio';
    n_tokens: number;
    n_pos: number;
    pos_start: number;
    tokens?: number[];
    id?: string;
    media?: number;
    pixels?: { file: string; shape: [number, number, number, number]; batch: number; channels: number; height: number; width: number } | null;
    embd?: { file: string; shape: [number, number] };
    positions?: { file: string; shape: [4, number]; sections: string[] };
    grid?: { x: number; y: number };
    non_causal?: boolean;
  }[];
  n_past_after_prompt: number;
  logits: { file: string; shape: [number, number]; tokens: number[]; positions: number[]; chunk: number[] };
  generation: { tokens: number[]; positions: number[]; text: string; stopped_on_eog: boolean; logits: { file: string; shape: [number, number] } };
  [k: string]: unknown;
}

export interface MtmdRefOutput {
  meta: MtmdRefMeta;
  /** [n_text_positions * n_vocab] */
  logits: Float32Array;
  /** [n_generated * n_vocab]; row i is the distribution generated token i was taken from. */
  genLogits: Float32Array;
  /** Per media chunk, in prompt order. */
  media: { pixels?: Float32Array; embd: Float32Array; positions: Int32Array }[];
}

function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function i32(path: string): Int32Array {
  const b = readFileSync(path);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Reads what mtmd-ref wrote into `dir`. */
export function readMtmdRefOutput(dir: string): MtmdRefOutput {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as MtmdRefMeta;
  const media = meta.chunks
    .filter((c) => c.type !== 'text')
    .map((c) => ({
      pixels: c.pixels ? f32(join(dir, c.pixels.file)) : undefined,
      embd: f32(join(dir, c.embd!.file)),
      positions: i32(join(dir, c.positions!.file)),
    }));
  return { meta, logits: f32(join(dir, meta.logits.file)), genLogits: f32(join(dir, meta.generation.logits.file)), media };
}

/** Runs mtmd-ref and reads its outputs; throws with its stderr when it fails. */
export async function runMtmdRef(bin: string, a: MtmdRefArgs): Promise<MtmdRefOutput> {
  const args = ['--model', a.model, '--prompt', a.prompt, '--out', a.out];
  if (a.textOnly) args.push('--text-only');
  if (a.mmproj) args.push('--mmproj', a.mmproj);
  if (a.image) args.push('--image', a.image);
  if (a.threads !== undefined) args.push('--threads', String(a.threads));
  if (a.nPredict !== undefined) args.push('--n-predict', String(a.nPredict));
  if (a.nCtx !== undefined) args.push('--n-ctx', String(a.nCtx));
  if (a.nBatch !== undefined) args.push('--n-batch', String(a.nBatch));
  if (a.nUbatch !== undefined) args.push('--ubatch', String(a.nUbatch));
  if (a.flashAttn) args.push('--flash-attn', a.flashAttn);
  if (a.cacheType) args.push('--cache-type', a.cacheType);
  if (a.addSpecial === false) args.push('--no-add-special');
  if (a.parseSpecial === false) args.push('--no-parse-special');
  if (a.ignoreEos) args.push('--ignore-eos');
  if (a.pixels === false) args.push('--no-pixels');
  if (a.imageMinTokens !== undefined) args.push('--image-min-tokens', String(a.imageMinTokens));
  if (a.imageMaxTokens !== undefined) args.push('--image-max-tokens', String(a.imageMaxTokens));
  const r = await run(bin, args, repoRoot, a.timeoutMs ?? 30 * 60_000);
  if (r.code !== 0) throw new Error(`mtmd-ref exited with ${r.code}: ${r.output.trim().split('\n').slice(-8).join('\n')}`);
  return readMtmdRefOutput(a.out);
}

// `tsx test/helpers/mtmd-ref/build.ts`: build (or find) the binary and print its path.
if (process.argv[1] && resolve(process.argv[1]) === resolve(here, 'build.ts')) {
  const t0 = Date.now();
  const r = await buildMtmdRef({ log: (l) => process.stderr.write(l + '\n') });
  if (r.ok) {
    console.log(r.bin);
    process.stderr.write(`mtmd-ref ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  } else {
    console.error(`cannot build mtmd-ref: ${r.reason}`);
    process.exitCode = 1;
  }
}
