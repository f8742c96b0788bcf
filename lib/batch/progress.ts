// Progress of a batch on stderr: a bar redrawn in place on a terminal (requests done / total, generated tokens/s, ETA),
// plain lines otherwise (every `every` requests or `intervalMs`), and a one-line summary at the end. Everything shown
// comes from runBatch's BatchProgress counts; the clock here only paces redraws, so the text is testable.
import { checkObject, optInt, optOneOf } from '../validate.js';
import { invalidArgument } from '../errors.js';
import type { BatchProgress } from './run-batch.js';

export const PROGRESS_MODES = ['bar', 'lines', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

export interface ProgressReporterOptions {
  /** 'bar' (a terminal), 'lines' (a log or pipe) or 'none' (the summary only). */
  mode: ProgressMode;
  write: (s: string) => void;
  /** Requests the run will do, when known (an input file: its lines less those already done). */
  total?: number;
  /** Milliseconds, for pacing. Default performance.now. */
  now?: () => number;
  /** bar: least time between redraws (default 100 ms); lines: a line at least this often while requests finish (default 10 s). */
  intervalMs?: number;
  /** lines: a line whenever done reaches a multiple of this (and the total). Default: a tenth of the total, else 100. */
  every?: number;
  /** Characters of the bar. Default 24. */
  width?: number;
}

const PREFIX = 'open-autoglm batch: ';

/** 12s, 3:07, 1:02:03. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Generated tokens per second of wall time. */
export function tokensPerSecond(p: BatchProgress): number {
  return p.elapsedMs > 0 ? (p.completionTokens * 1000) / p.elapsedMs : 0;
}

function eta(p: BatchProgress, total: number): string {
  if (p.done >= total) return formatDuration(0);
  if (p.done === 0 || p.elapsedMs <= 0) return '?';
  return formatDuration(((total - p.done) * p.elapsedMs) / p.done);
}

/** The plain progress line (no newline). */
export function formatProgressLine(p: BatchProgress, total: number | undefined): string {
  const count = total === undefined ? `${p.done} done` : `${p.done}/${total} done`;
  const rest = `${p.failed} failed, ${tokensPerSecond(p).toFixed(1)} tokens/s`;
  return `${PREFIX}${count}, ${rest}${total === undefined ? '' : `, ETA ${eta(p, total)}`}`;
}

/** The bar (no carriage return or newline). */
export function formatProgressBar(p: BatchProgress, total: number | undefined, width = 24): string {
  const rate = `${tokensPerSecond(p).toFixed(1)} tok/s`;
  const failed = p.failed > 0 ? ` | ${p.failed} failed` : '';
  if (total === undefined) return `${p.done} done${failed} | ${rate}`;
  const frac = total > 0 ? Math.min(1, p.done / total) : 1;
  const fill = Math.round(frac * width);
  const bar = '#'.repeat(fill) + '.'.repeat(width - fill);
  return `[${bar}] ${p.done}/${total} ${Math.floor(frac * 100)}%${failed} | ${rate} | ETA ${eta(p, total)}`;
}

/** The summary line (no newline). */
export function formatSummary(p: BatchProgress, interrupted = false): string {
  const tokens = p.promptTokens + p.completionTokens;
  return (
    `${PREFIX}${interrupted ? 'interrupted: ' : ''}${p.done} done (${p.done - p.failed} succeeded, ${p.failed} failed), ${p.skipped} skipped; ` +
    `${tokens} tokens (${p.promptTokens} prompt + ${p.completionTokens} generated) in ${(p.elapsedMs / 1000).toFixed(2)} s, ` +
    `${tokensPerSecond(p).toFixed(1)} generated tokens/s`
  );
}

export class BatchProgressReporter {
  readonly mode: ProgressMode;
  readonly total: number | undefined;
  readonly #write: (s: string) => void;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #every: number;
  readonly #width: number;
  #last = -Infinity;
  #lastDone = 0;
  #drawn = false;

  constructor(options: ProgressReporterOptions) {
    const o = checkObject<ProgressReporterOptions>('progress options', options);
    this.mode = optOneOf('mode', o.mode, PROGRESS_MODES, 'lines');
    if (typeof o.write !== 'function') throw invalidArgument('write', 'a function', o.write);
    if (o.now !== undefined && typeof o.now !== 'function') throw invalidArgument('now', 'a function', o.now);
    this.#write = o.write;
    this.total = o.total === undefined ? undefined : optInt('total', o.total, 0, Number.MAX_SAFE_INTEGER, 0);
    this.#now = o.now ?? (() => performance.now());
    this.#interval = optInt('intervalMs', o.intervalMs, 0, 1 << 30, this.mode === 'bar' ? 100 : 10_000);
    this.#every = optInt('every', o.every, 1, Number.MAX_SAFE_INTEGER, this.total ? Math.max(1, Math.ceil(this.total / 10)) : 100);
    this.#width = optInt('width', o.width, 1, 200, 24);
  }

  /** A count changed (runBatch's onProgress). */
  update(p: BatchProgress): void {
    if (this.mode === 'none') return;
    const now = this.#now();
    if (this.mode === 'bar') {
      // The last request is always drawn; the others at most every intervalMs.
      const last = this.total !== undefined && p.done >= this.total && p.done !== this.#lastDone;
      if (!last && now - this.#last < this.#interval) return;
      this.#last = now;
      this.#lastDone = p.done;
      this.#drawn = true;
      this.#write(`\r${formatProgressBar(p, this.total, this.#width)}\x1b[K`);
      return;
    }
    if (p.done === this.#lastDone) return;
    this.#lastDone = p.done;
    const last = this.total !== undefined && p.done >= this.total;
    if (!last && p.done % this.#every !== 0 && now - this.#last < this.#interval) return;
    this.#last = now;
    this.#write(formatProgressLine(p, this.total) + '\n');
  }

  /** The end (or an interruption): clears the bar and writes the summary. */
  finish(p: BatchProgress, interrupted = false): void {
    if (this.#drawn) this.#write('\r\x1b[K');
    this.#drawn = false;
    this.#write(formatSummary(p, interrupted) + '\n');
  }
}
