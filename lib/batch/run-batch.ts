// Batch jobs in OpenAI's Batch API line format, run locally on the serving engine: requests (/v1/chat/completions,
// /v1/completions, /v1/embeddings) are pulled from an (async) iterable as sequences free up, at most `parallel` at once,
// and their result lines are yielded as they complete (not in input order, like OpenAI's output files). A request the
// HTTP server would refuse gets the same status and error body in `response`; a line that is not a request at all
// (not JSON, no custom_id, a duplicate custom_id, another method or url) gets `error` with the line number.
import { randomBytes } from 'node:crypto';
import { AglmError, invalidArgument } from '../errors.js';
import type { Model } from '../model/model.js';
import { badRequest, toApiError, type ApiError } from '../server/api-error.js';
import { ServingEngine, type GenerationResult } from '../server/engine.js';
import { chatCompletionJson, completionJson, embeddingsJson, requestId, type ResponseMeta } from '../server/openai-format.js';
import {
  parseChatRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  type ChatRequestSpec,
  type CompletionRequestSpec,
  type EmbeddingRequestSpec,
} from '../server/requests.js';
import { checkObject, optInt, optOneOf, optSignal } from '../validate.js';

export const BATCH_URLS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings'] as const;
export type BatchUrl = (typeof BATCH_URLS)[number];

/** One line of an OpenAI batch input file. */
export interface BatchRequestLine {
  custom_id: string;
  method: 'POST';
  url: BatchUrl;
  body: Record<string, unknown>;
}

/** The error of a line that is not a request (OpenAI's BatchError: code, message, param, line). */
export interface BatchLineError {
  code: string;
  message: string;
  param: string | null;
  /** The input line (1-based; the item's position in the iterable). */
  line: number;
}

/** One line of an OpenAI batch output file. */
export interface BatchResultLine {
  id: string;
  custom_id: string | null;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: BatchLineError | null;
}

/** Counts of one runBatch call (skipped lines are not part of done). */
export interface BatchProgress {
  /** Result lines produced: succeeded and failed. */
  done: number;
  /** Of done: a status other than 200, or a line error. */
  failed: number;
  /** Lines passed over: custom_id in `skip`, or line number in `skipLines`. */
  skipped: number;
  /** Requests running now. */
  inFlight: number;
  promptTokens: number;
  completionTokens: number;
  /** Since the first result was asked for. */
  elapsedMs: number;
}

export interface BatchOptions {
  /** Requests (sequences) running at once. Default 4. */
  parallel?: number;
  /** KV cells the sequences share. Default: the model's default context size. */
  contextSize?: number;
  /** Most tokens per step. Default 512. */
  batchSize?: number;
  threads?: number;
  kvCacheType?: 'f32' | 'f16';
  /** The model name request bodies may give (`model`; another one is a 404). Default: the file name without .gguf. */
  modelName?: string;
  /** Aborting stops at once: in-flight requests are cancelled and the iteration rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called whenever a count changes (before the result it counts is yielded). */
  onProgress?: (progress: BatchProgress) => void;
  /** custom_ids already done: their lines are skipped (a resumed run). */
  skip?: ReadonlySet<string>;
  /** Line numbers whose line errors are already reported (output lines with error.line): skipped. */
  skipLines?: ReadonlySet<number>;
}

/** A request body or an input line: an object, or a JSON text (blank strings are ignored but counted as lines). */
export type BatchInput = BatchRequestLine | Record<string, unknown> | string;


/** OpenAI's batch request ids: batch_req_ then 24 letters and digits (the server's requestId joins with '-'). */
function batchRequestId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = 'batch_req_';
  for (const b of randomBytes(24)) s += alphabet[b % alphabet.length];
  return s;
}

function lineError(customId: string | null, line: number, code: string, message: string, param: string | null = null): BatchResultLine {
  return { id: batchRequestId(), custom_id: customId, response: null, error: { code, message, param, line } };
}

function response(customId: string, status: number, body: unknown): BatchResultLine {
  return { id: batchRequestId(), custom_id: customId, response: { status_code: status, request_id: randomBytes(16).toString('hex'), body }, error: null };
}

/** A failed result: a line error, or a response with a status other than 200. */
export function isFailedResult(r: BatchResultLine): boolean {
  return r.error !== null || r.response === null || r.response.status_code !== 200;
}

type Spec =
  | { kind: 'chat'; spec: ChatRequestSpec }
  | { kind: 'completion'; spec: CompletionRequestSpec }
  | { kind: 'embedding'; spec: EmbeddingRequestSpec };

interface Pending {
  customId: string;
  spec: Spec;
  /** Sequences it takes. */
  need: number;
  /** Runs that found the KV pool full of other requests' cells. */
  attempts: number;
  /** Retry only after this many requests have completed (another request freed its cells). */
  after: number;
}

function checkSet(name: string, value: unknown, type: 'string' | 'number'): ReadonlySet<unknown> | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Set)) throw invalidArgument(name, `a Set of ${type}s`, value);
  for (const v of value) if (typeof v !== type) throw invalidArgument(`${name} item`, `a ${type}`, v);
  return value;
}

interface Resolved {
  parallel: number;
  engine: {
    contextSize?: number;
    batchSize?: number;
    threads?: number;
    kvCacheType: 'f32' | 'f16';
    modelName?: string;
  };
  signal: AbortSignal | undefined;
  onProgress: ((p: BatchProgress) => void) | undefined;
  skip: ReadonlySet<string>;
  skipLines: ReadonlySet<number>;
}

function resolveOptions(options: BatchOptions | undefined): Resolved {
  const o = checkObject<BatchOptions>('batch options', options);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidArgument('onProgress', 'a function', o.onProgress);
  if (o.modelName !== undefined && (typeof o.modelName !== 'string' || o.modelName.length === 0)) {
    throw invalidArgument('modelName', 'a non-empty string', o.modelName);
  }
  const opt = (name: string, v: unknown, min: number, max: number) => (v === undefined ? undefined : optInt(name, v, min, max, 0));
  return {
    parallel: optInt('parallel', o.parallel, 1, 1024, 4),
    engine: {
      contextSize: opt('contextSize', o.contextSize, 1, 1 << 24),
      batchSize: opt('batchSize', o.batchSize, 1, 1 << 16),
      threads: opt('threads', o.threads, 1, 1024),
      kvCacheType: optOneOf('kvCacheType', o.kvCacheType, ['f32', 'f16'] as const, 'f32'),
      modelName: o.modelName,
    },
    signal: optSignal('signal', o.signal),
    onProgress: o.onProgress,
    skip: (checkSet('skip', o.skip, 'string') as ReadonlySet<string> | undefined) ?? new Set(),
    skipLines: (checkSet('skipLines', o.skipLines, 'number') as ReadonlySet<number> | undefined) ?? new Set(),
  };
}

function iteratorOf(requests: unknown): () => AsyncIterator<unknown> {
  if (requests !== null && typeof requests === 'object') {
    const r = requests as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
    if (typeof r[Symbol.asyncIterator] === 'function') return () => r[Symbol.asyncIterator]!();
    if (typeof r[Symbol.iterator] === 'function') {
      return () => {
        const it = r[Symbol.iterator]!();
        return {
          next: async () => it.next(),
          return: async (v?: unknown) => (it.return ? it.return(v) : { done: true, value: v }),
        };
      };
    }
  }
  throw invalidArgument('requests', 'an iterable or async iterable of request lines (objects or JSON strings)', requests);
}

/**
 * Runs an OpenAI batch on `model`: `parallel` requests at once, each on a sequence of one shared context (requests
 * running together share forward passes). Pulls input only as sequences free up and yields result lines as requests
 * complete, so neither side is held in memory. Options are checked at once (INVALID_ARGUMENT); the engine is made on
 * the first `next()` and closed when the iteration ends, fails, is aborted or is left (the model stays the caller's).
 */
export function runBatch(model: Model, requests: Iterable<BatchInput> | AsyncIterable<BatchInput>, options?: BatchOptions): AsyncGenerator<BatchResultLine, BatchProgress> {
  const open = iteratorOf(requests);
  const o = resolveOptions(options);
  return run(model, open, o);
}

async function* run(model: Model, open: () => AsyncIterator<unknown>, o: Resolved): AsyncGenerator<BatchResultLine, BatchProgress> {
  const t0 = performance.now();
  const stats = { done: 0, failed: 0, skipped: 0, promptTokens: 0, completionTokens: 0 };
  const running = new Set<Promise<void>>();
  const snapshot = (): BatchProgress => ({ ...stats, inFlight: running.size, elapsedMs: performance.now() - t0 });
  const ready: { line: BatchResultLine; promptTokens: number; completionTokens: number }[] = [];
  const retries: Pending[] = [];
  let held: Pending | undefined;
  let used = 0;
  let completions = 0;
  // Sequences allowed at once: `parallel`, less while the KV pool proves too small for that many (a request found it
  // full of the others' cells); grows back by one after twice its size in requests that finished.
  let limit = o.parallel;
  let finishedSinceCut = 0;
  let reading = false;
  let inputDone = false;
  let inputFailed: { error: unknown } | undefined;
  let lineNo = 0;
  const seen = new Set<string>();
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  // Cancels in-flight requests: the caller's abort, or the iteration ending early.
  const stop = new AbortController();
  const onAbort = () => {
    stop.abort(o.signal!.reason);
    notify();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  let source: AsyncIterator<unknown> | undefined;
  let engine: ServingEngine | undefined;

  /** Sorts one input item: blank, skipped, a line error, a request the server would refuse (400/404), or work. */
  const accept = (item: unknown): void => {
    const line = ++lineNo;
    let value = item;
    let notJson: string | undefined;
    if (typeof item === 'string') {
      if (!/\S/.test(item)) return;
      try {
        value = JSON.parse(item);
      } catch (e) {
        notJson = `Line ${line} is not valid JSON: ${(e as Error).message}`;
      }
    }
    const isObject = notJson === undefined && value !== null && typeof value === 'object' && !Array.isArray(value);
    const req = (isObject ? value : {}) as Record<string, unknown>;
    const id = typeof req.custom_id === 'string' && req.custom_id.length > 0 ? req.custom_id : null;
    if (o.skipLines.has(line)) {
      if (id !== null) seen.add(id);
      stats.skipped++;
      o.onProgress?.(snapshot());
      return;
    }
    const fail = (code: string, message: string, param: string | null) => {
      ready.push({ line: lineError(id, line, code, message, param), promptTokens: 0, completionTokens: 0 });
    };
    if (!isObject) return fail('invalid_json_line', notJson ?? `Line ${line} is not a JSON object`, null);
    if (id === null) {
      if (req.custom_id === undefined || req.custom_id === null) return fail('missing_required_parameter', `Line ${line} has no custom_id`, 'custom_id');
      return fail('invalid_custom_id', `Line ${line}: custom_id must be a non-empty string`, 'custom_id');
    }
    if (seen.has(id)) {
      return fail('duplicate_custom_id', `Line ${line}: the custom_id '${id}' is a duplicate of another request's; custom_ids must be unique in a batch`, 'custom_id');
    }
    seen.add(id);
    if (o.skip.has(id)) {
      stats.skipped++;
      o.onProgress?.(snapshot());
      return;
    }
    if (req.method !== 'POST') {
      if (req.method === undefined) return fail('missing_required_parameter', `Line ${line} has no method`, 'method');
      return fail('invalid_method', `Line ${line}: the method must be POST, not ${JSON.stringify(req.method)}`, 'method');
    }
    if (typeof req.url !== 'string' || !(BATCH_URLS as readonly string[]).includes(req.url)) {
      if (req.url === undefined) return fail('missing_required_parameter', `Line ${line} has no url`, 'url');
      return fail('invalid_url', `Line ${line}: the url must be one of ${BATCH_URLS.join(', ')}, not ${JSON.stringify(req.url)}`, 'url');
    }
    if (req.body === undefined) return fail('missing_required_parameter', `Line ${line} has no body`, 'body');
    const e = engine!;
    let spec: Spec;
    let need = 1;
    try {
      if (req.url === '/v1/chat/completions') {
        const s = parseChatRequest(req.body, e.name, model.vocabSize, e.parallel);
        spec = { kind: 'chat', spec: s };
        need = s.n;
      } else if (req.url === '/v1/completions') {
        const s = parseCompletionRequest(req.body, e.name, model.vocabSize, e.parallel);
        spec = { kind: 'completion', spec: s };
        need = s.n * s.prompts.length;
      } else {
        spec = { kind: 'embedding', spec: parseEmbeddingRequest(req.body, e.name, model.vocabSize) };
      }
      if (spec.kind !== 'embedding' && spec.spec.stream) {
        throw badRequest('stream is not supported in a batch: each result is written whole', 'stream', 'unsupported_parameter');
      }
    } catch (err) {
      const api = toApiError(err);
      ready.push({ line: response(id, api.status, api.toJSON()), promptTokens: 0, completionTokens: 0 });
      return;
    }
    held = { customId: id, spec, need, attempts: 0, after: -1 };
  };

  const read = (): void => {
    reading = true;
    source!.next().then(
      (r) => {
        reading = false;
        if (r.done) inputDone = true;
        else if (!stop.signal.aborted) {
          try {
            accept(r.value);
          } catch (e) {
            inputFailed = { error: e };
          }
        }
        notify();
      },
      (e) => {
        reading = false;
        inputFailed = { error: e };
        notify();
      },
    );
  };

  // Nothing running: anything may start (also a request needing more than the limit).
  const startable = (p: Pending) => running.size === 0 || (used + p.need <= limit && completions > p.after);

  const start = (p: Pending): void => {
    used += p.need;
    const task = execute(engine!, p, stop.signal, () => running.size > 1).then((r) => {
      if (r === 'retry') {
        limit = Math.max(1, Math.min(limit, used) - 1);
        finishedSinceCut = 0;
      }
      used -= p.need;
      completions++;
      running.delete(task);
      if (r === 'retry') {
        p.attempts++;
        p.after = completions;
        retries.push(p);
      } else if (r !== 'aborted') {
        ready.push(r);
        if (limit < o.parallel && ++finishedSinceCut >= 2 * limit) {
          limit++;
          finishedSinceCut = 0;
        }
      }
      notify();
    });
    running.add(task);
  };

  try {
    source = open();
    engine = new ServingEngine(model, { ...o.engine, parallel: o.parallel, maxQueue: o.parallel });
    for (;;) {
      if (o.signal?.aborted) throw new AglmError('ABORTED', 'The batch was aborted', { cause: o.signal.reason });
      if (inputFailed) throw inputFailed.error;
      const r = ready.shift();
      if (r) {
        stats.done++;
        if (isFailedResult(r.line)) stats.failed++;
        stats.promptTokens += r.promptTokens;
        stats.completionTokens += r.completionTokens;
        o.onProgress?.(snapshot());
        yield r.line;
        continue;
      }
      if (retries.length > 0 && startable(retries[0])) {
        start(retries.shift()!);
        continue;
      }
      if (held && retries.length === 0 && startable(held)) {
        start(held);
        held = undefined;
        continue;
      }
      if (!held && !inputDone && !reading) {
        read();
        continue;
      }
      if (inputDone && !held && !reading && retries.length === 0 && running.size === 0) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    return snapshot();
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (!stop.signal.aborted) stop.abort(new AglmError('ABORTED', 'The batch iteration ended'));
    await Promise.allSettled(running);
    await engine?.close(0);
    if (!inputDone) {
      // An async generator finishes a pending next() before its return(): waiting for it could wait for input that
      // never comes (a pipe left open), so only a source not being read is waited for.
      const closed = Promise.resolve()
        .then(() => source?.return?.())
        .catch(() => {});
      if (!reading) await closed;
    }
  }
}

type Outcome = { line: BatchResultLine; promptTokens: number; completionTokens: number } | 'retry' | 'aborted';

/** One request on the engine; never rejects. `others()`: whether other requests are running. */
async function execute(engine: ServingEngine, p: Pending, signal: AbortSignal, others: () => boolean): Promise<Outcome> {
  const meta = (prefix: 'chatcmpl' | 'cmpl'): ResponseMeta => ({ id: requestId(prefix), created: Math.floor(Date.now() / 1000), model: engine.name });
  try {
    const s = p.spec;
    if (s.kind === 'embedding') {
      const r = await engine.embed(s.spec, { signal });
      return { line: response(p.customId, 200, embeddingsJson(engine.name, r.vectors, r.promptTokens, s.spec.encoding)), promptTokens: r.promptTokens, completionTokens: 0 };
    }
    let r: GenerationResult;
    let body: object;
    if (s.kind === 'chat') {
      r = await engine.chat(s.spec, { signal });
      body = chatCompletionJson(meta('chatcmpl'), r);
    } else {
      r = await engine.complete(s.spec, { signal });
      body = completionJson(meta('cmpl'), r);
    }
    return { line: response(p.customId, 200, body), promptTokens: r.usage.promptTokens, completionTokens: r.usage.completionTokens };
  } catch (e) {
    if (signal.aborted) return 'aborted';
    const api: ApiError = toApiError(e);
    // The KV pool was full of other requests' cells (a request alone ends at a full context with finish_reason
    // length): run it again once another request has finished and with fewer at once, as an HTTP client would after
    // the 503's Retry-After.
    if (api.status === 503 && (api.code === 'kv_cache_full' || api.code === 'overloaded') && others()) return 'retry';
    return { line: response(p.customId, api.status, api.toJSON()), promptTokens: 0, completionTokens: 0 };
  }
}
