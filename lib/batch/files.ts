// Batch files: JSONL read line by line as bytes arrive (never whole), an output file checked before a resumed run (its
// custom_ids, a torn last line cut off), and result lines appended one write() each.
import { createReadStream } from 'node:fs';
import { open, stat, truncate, type FileHandle } from 'node:fs/promises';
import { AglmError } from '../errors.js';
import type { BatchResultLine } from './run-batch.js';

/** Every line of a file or stream (blank ones too, so positions are line numbers), without its "\n" or "\r\n". */
export async function* readLines(source: string | NodeJS.ReadableStream): AsyncGenerator<string> {
  for await (const { text } of readLinesWithOffsets(source)) yield text;
}

/** Lines with the byte offset just past each one's "\n"; `complete` is false for a last line that has none. */
async function* readLinesWithOffsets(source: string | NodeJS.ReadableStream): AsyncGenerator<{ text: string; end: number; complete: boolean }> {
  const stream = typeof source === 'string' ? createReadStream(source) : source;
  let pending: Buffer[] = [];
  let offset = 0; // bytes before the current chunk
  let first = true;
  const decode = (b: Buffer) => {
    let s = b.toString('utf8');
    if (first) {
      first = false;
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    }
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  };
  for await (const c of stream) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    let start = 0;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, i);
      const line = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      start = i + 1;
      yield { text: decode(line), end: offset + start, complete: true };
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
    offset += chunk.length;
  }
  if (pending.length > 0) yield { text: decode(Buffer.concat(pending)), end: offset, complete: false };
}

/** What an output file already holds, for a resumed run. */
export interface BatchOutputState {
  /** custom_ids with a result (their input lines are skipped). */
  skip: Set<string>;
  /** Input line numbers whose line errors are written (error.line). */
  skipLines: Set<number>;
  /** Result lines in the file. */
  results: number;
  /** Bytes of a torn last line cut off (0 if none). */
  repairedBytes: number;
}

function isResultLine(v: unknown): v is BatchResultLine {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return typeof r.id === 'string' && 'custom_id' in r && 'response' in r && 'error' in r && (typeof r.custom_id === 'string' || r.custom_id === null);
}

/**
 * Reads an existing output file (none: empty state) and cuts off a torn last line: bytes after the last "\n", which
 * only a crash in the middle of a write leaves, since each line is written whole with its "\n". A complete line that
 * is not a batch result means the file is not ours: INVALID_ARGUMENT, nothing is changed.
 */
export async function prepareOutput(path: string): Promise<BatchOutputState> {
  const state: BatchOutputState = { skip: new Set(), skipLines: new Set(), results: 0, repairedBytes: 0 };
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return state;
    throw new AglmError('IO_ERROR', `Cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let good = 0;
  let n = 0;
  for await (const { text, end, complete } of readLinesWithOffsets(path)) {
    if (!complete) break;
    n++;
    good = end;
    if (!/\S/.test(text)) continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = undefined;
    }
    if (!isResultLine(v)) {
      throw new AglmError('INVALID_ARGUMENT', `${path} line ${n} is not a batch result line; refusing to append to it (choose another --output)`);
    }
    state.results++;
    const line = v.error !== null && typeof v.error === 'object' ? (v.error as { line?: unknown }).line : undefined;
    if (typeof line === 'number') state.skipLines.add(line);
    else if (v.custom_id !== null) state.skip.add(v.custom_id);
  }
  if (good < size) {
    await truncate(path, good);
    state.repairedBytes = size - good;
  }
  return state;
}

/**
 * Appends result lines: one write() of the whole line and its "\n" each (a short write is continued), in the order
 * given. A line is in the kernel once write() resolves, so it survives the process being killed (SIGKILL included);
 * only close() syncs it to the disk (fdatasync), so a power loss may lose the lines written since.
 */
export class ResultWriter {
  readonly #file: FileHandle;

  private constructor(file: FileHandle) {
    this.#file = file;
  }

  static async open(path: string): Promise<ResultWriter> {
    try {
      return new ResultWriter(await open(path, 'a'));
    } catch (e) {
      throw new AglmError('IO_ERROR', `Cannot open ${path} for appending: ${(e as Error).message}`, { cause: e });
    }
  }

  async write(line: BatchResultLine): Promise<void> {
    const buf = Buffer.from(JSON.stringify(line) + '\n', 'utf8');
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.#file.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }

  async close(): Promise<void> {
    try {
      await this.#file.datasync();
    } finally {
      await this.#file.close();
    }
  }
}

/**
 * Lines of an input file that a run will not skip: non-blank, and neither with a custom_id in `skip` nor a number in
 * `skipLines` (for the progress total). Reads the file once more; parses lines only when there is something to skip.
 */
export async function countPendingLines(path: string, skip: ReadonlySet<string>, skipLines: ReadonlySet<number>): Promise<number> {
  let n = 0;
  let line = 0;
  const skipped = new Set<string>(); // a later line with the same custom_id is a duplicate: it gets a line error
  for await (const text of readLines(path)) {
    line++;
    if (!/\S/.test(text) || skipLines.has(line)) continue;
    if (skip.size > 0) {
      try {
        const v = JSON.parse(text) as { custom_id?: unknown } | null;
        const id = v !== null && typeof v === 'object' && typeof v.custom_id === 'string' ? v.custom_id : undefined;
        if (id !== undefined && skip.has(id) && !skipped.has(id)) {
          skipped.add(id);
          continue;
        }
      } catch {
        // counted: it will be a line error
      }
    }
    n++;
  }
  return n;
}
