// createServer(model, options): an OpenAI-compatible HTTP API as a node:http request handler, so it runs alone
// (open-autoglm serve) or mounts in Express, Fastify or any node:http server. Streaming answers are Server-Sent Events
// ending in `data: [DONE]`; every error is OpenAI's error shape; a client that goes away cancels its request at once.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatToolCall } from '../chat/tools.js';
import { AglmError } from '../errors.js';
import type { Model } from '../model/model.js';
import { checkObject, optInt } from '../validate.js';
import { ApiError, badRequest, toApiError } from './api-error.js';
import { ServingEngine, type EngineOptions, type FinishReason, type GenerationResult } from './engine.js';
import {
  chatCompletionJson,
  chunkJson,
  completionJson,
  embeddingsJson,
  modelJson,
  requestId,
  timingsJson,
  usageChunkJson,
  type ResponseMeta,
} from './openai-format.js';
import {
  parseChatRequest,
  parseCompletionRequest,
  parseDetokenizeRequest,
  parseEmbeddingRequest,
  parseTokenizeRequest,
} from './requests.js';

export interface ServerOptions extends EngineOptions {
  /** Requests must carry `Authorization: Bearer <apiKey>` (all but /health). Default: none required. */
  apiKey?: string;
  /** Largest request body in bytes (413 beyond). Default 4 MiB; 48 MiB for a model with a vision projector. */
  maxBodyBytes?: number;
  /** SSE comment lines sent while a streaming request waits or processes its prompt, every this many ms. Default 5000. */
  keepAliveMs?: number;
  /** Origins allowed to call from a browser (CORS). Default: none. */
  corsOrigins?: string[];
}

/** A node:http request handler with the engine behind it. */
export interface OpenAiHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Resolves with the engine once the model has loaded (rejects if it failed to). */
  readonly ready: Promise<ServingEngine>;
  /** The engine, once ready. */
  readonly engine: ServingEngine | undefined;
  /**
   * Graceful shutdown: new requests get 503; in-flight ones may finish until the deadline, then are cancelled (a
   * stream gets an error event). Resolves when none is left; the model stays the caller's to dispose.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  const headers: Record<string, string> = {};
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
  if (e.status === 401) headers['www-authenticate'] = 'Bearer';
  sendJson(res, e.status, e.toJSON(), headers);
}

/**
 * Reads a JSON body: at most `limit` bytes (413), valid UTF-8 (400), valid JSON (400). A body over the limit is not
 * kept: the 413 goes out with `Connection: close`, and the connection closes once it is sent (the socket must stay
 * open until then, or the client sees a reset instead of the answer).
 */
function readJson(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = (message: string) => {
      res.setHeader('connection', 'close');
      req.resume(); // what else arrives is dropped until the connection closes
      reject(new ApiError(413, 'invalid_request_error', message, { code: 'request_too_large' }));
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      tooLarge(`The request body is ${declared} bytes; the limit is ${limit}`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size > limit) return;
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        tooLarge(`The request body exceeds the limit of ${limit} bytes`);
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > limit) return;
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
      } catch {
        reject(badRequest('The request body is not valid UTF-8', undefined, 'invalid_encoding'));
        return;
      }
      if (text.trim().length === 0) {
        reject(badRequest('The request body is empty; a JSON object was expected', undefined, 'invalid_json'));
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(badRequest(`The request body is not valid JSON: ${(e as Error).message}`, undefined, 'invalid_json'));
      }
    });
  });
}

const ENDPOINTS = new Set([
  '/health',
  '/metrics',
  '/v1/models',
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/tokenize',
  '/detokenize',
  '/v1/tokenize',
  '/v1/detokenize',
]);

/** The label a request is counted under in /metrics; any other path is 'other' (a label per path would grow unbounded). */
function endpointOf(path: string): string {
  if (/^\/v1\/models\/./.test(path)) return '/v1/models/:id';
  return ENDPOINTS.has(path) ? path : 'other';
}

/** An SSE stream that sends its headers only once there is something to send (so admission errors can still be a 503). */
class SseWriter {
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly res: ServerResponse,
    keepAliveMs: number,
  ) {
    this.#timer = setInterval(() => this.comment('keep-alive'), keepAliveMs);
    this.#timer.unref();
  }
  get started(): boolean {
    return this.#started;
  }
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    this.res.flushHeaders();
  }
  comment(text: string): void {
    if (this.res.destroyed) return;
    this.#start();
    this.res.write(`: ${text}\n\n`);
  }
  data(obj: unknown): void {
    if (this.res.destroyed) return;
    this.#start();
    this.res.write(`data: ${JSON.stringify(obj)}\n\n`);
  }
  done(): void {
    this.stop();
    if (this.res.destroyed) return;
    this.#start();
    this.res.end('data: [DONE]\n\n');
  }
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

export function createServer(model: Model | Promise<Model>, options?: ServerOptions): OpenAiHandler {
  const o = checkObject<ServerOptions>('server options', options);
  const { apiKey, maxBodyBytes, keepAliveMs, corsOrigins, ...engineOptions } = o;
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.length === 0)) {
    throw new AglmError('INVALID_ARGUMENT', 'Expected a non-empty string for apiKey');
  }
  if (corsOrigins !== undefined && (!Array.isArray(corsOrigins) || !corsOrigins.every((x) => typeof x === 'string'))) {
    throw new AglmError('INVALID_ARGUMENT', 'Expected an array of origin strings for corsOrigins');
  }
  // Default body limit: 4 MiB, or 48 MiB for a model that reads images (screenshots come base64 in the body).
  const givenLimit = maxBodyBytes === undefined ? undefined : optInt('maxBodyBytes', maxBodyBytes, 1024, 1 << 30, 4 << 20);
  const bodyLimit = () => givenLimit ?? (engine?.model.vision ? 48 << 20 : 4 << 20);
  const keepAlive = optInt('keepAliveMs', keepAliveMs, 10, 3_600_000, 5000);
  const keyHash = apiKey === undefined ? undefined : createHash('sha256').update(apiKey).digest();
  let engine: ServingEngine | undefined;
  let loadFailed = false;
  let closing = false;
  const ready = Promise.resolve(model).then((m) => (engine = new ServingEngine(m, engineOptions)));
  ready.catch(() => (loadFailed = true)); // reported by /health and to whoever awaits `ready`

  const authorized = (req: IncomingMessage): boolean => {
    if (!keyHash) return true;
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    return m !== null && timingSafeEqual(createHash('sha256').update(m[1]).digest(), keyHash);
  };

  async function route(req: IncomingMessage, res: ServerResponse, path: string, signal: AbortSignal): Promise<void> {
    const method = req.method ?? 'GET';
    if (path === '/health') {
      if (engine && !closing) return sendJson(res, 200, { status: 'ok' });
      return sendJson(res, 503, { status: closing ? 'shutting down' : loadFailed ? 'error' : 'loading' }, { 'retry-after': '1' });
    }
    if (!authorized(req)) throw new ApiError(401, 'authentication_error', 'Missing or wrong API key (Authorization: Bearer <key>)', { code: 'invalid_api_key' });
    const post = (fn: (body: unknown, e: ServingEngine) => Promise<void>) => async () => {
      if (method !== 'POST') throw new ApiError(405, 'invalid_request_error', `${method} is not allowed on ${path}; use POST`, { code: 'method_not_allowed' });
      const body = await readJson(req, res, bodyLimit());
      await fn(body, usable());
    };
    const usable = (): ServingEngine => {
      if (closing) throw new ApiError(503, 'server_error', 'The server is shutting down', { code: 'shutting_down' });
      if (!engine) throw new ApiError(503, 'server_error', 'The model is still loading', { code: 'loading', retryAfter: 1 });
      return engine;
    };
    const routes: Record<string, () => Promise<void> | void> = {
      '/metrics': () => {
        const e = usable();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(e.metrics.render());
      },
      '/v1/models': () => {
        const e = usable();
        sendJson(res, 200, { object: 'list', data: [modelJson(e.name, e.created)] });
      },
      '/v1/chat/completions': post(async (body, e) => {
        const spec = parseChatRequest(body, e.name, e.model.vocabSize, e.parallel, e.model.vision !== undefined);
        await generation('chat', spec, (run) => e.chat(spec, run), e, res, signal);
      }),
      '/v1/completions': post(async (body, e) => {
        const spec = parseCompletionRequest(body, e.name, e.model.vocabSize, e.parallel);
        await generation('completion', spec, (run) => e.complete(spec, run), e, res, signal);
      }),
      '/v1/embeddings': post(async (body, e) => {
        const spec = parseEmbeddingRequest(body, e.name, e.model.vocabSize);
        const r = await e.embed(spec, { signal });
        sendJson(res, 200, embeddingsJson(e.name, r.vectors, r.promptTokens, spec.encoding));
      }),
      '/tokenize': post(async (body, e) => {
        const t = parseTokenizeRequest(body);
        const ids = e.tokenize(t.content, t.addSpecial, t.parseSpecial);
        sendJson(res, 200, { tokens: t.withPieces ? ids.map((id) => ({ id, piece: e.piece(id) })) : ids });
      }),
      '/detokenize': post(async (body, e) => {
        sendJson(res, 200, { content: e.detokenize(parseDetokenizeRequest(body, e.model.vocabSize)) });
      }),
    };
    const model = /^\/v1\/models\/(.+)$/.exec(path);
    if (model) {
      const e = usable();
      let id = model[1];
      try {
        id = decodeURIComponent(id);
      } catch {
        // not valid percent-encoding: no model has that id either
      }
      if (id !== e.name) throw new ApiError(404, 'invalid_request_error', `The model '${id}' does not exist`, { code: 'model_not_found', param: 'model' });
      return sendJson(res, 200, modelJson(e.name, e.created));
    }
    const handler = routes[path] ?? routes[path.replace(/^\/v1(?=\/(tokenize|detokenize)$)/, '')];
    if (!handler) throw new ApiError(404, 'invalid_request_error', `No route ${method} ${path}`, { code: 'not_found' });
    if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') {
      throw new ApiError(405, 'invalid_request_error', `${method} is not allowed on ${path}`, { code: 'method_not_allowed' });
    }
    await handler();
  }

  async function generation(
    kind: 'chat' | 'completion',
    spec: { stream: boolean; includeUsage: boolean },
    start: (run: {
      signal: AbortSignal;
      onText?: (i: number, t: string) => void;
      onToolCalls?: (i: number, calls: ChatToolCall[]) => void;
      onFinish?: (i: number, r: FinishReason) => void;
    }) => Promise<GenerationResult>,
    e: ServingEngine,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const meta: ResponseMeta = { id: requestId(kind === 'chat' ? 'chatcmpl' : 'cmpl'), created: Math.floor(Date.now() / 1000), model: e.name };
    if (!spec.stream) {
      const r = await start({ signal });
      return sendJson(res, 200, kind === 'chat' ? chatCompletionJson(meta, r) : completionJson(meta, r));
    }
    const sse = new SseWriter(res, keepAlive);
    const opened = new Set<number>();
    const open = (i: number) => {
      if (opened.has(i) || kind !== 'chat') return false;
      opened.add(i);
      return true;
    };
    // The last finish chunk waits for the result, to carry the timings (as llama.cpp's last chunk does; a chunk with a
    // choice, so clients that read choices[0] of every chunk are fine). The usage comes in its own last chunk when
    // stream_options.include_usage asks for it, as OpenAI sends it.
    let held: Record<string, unknown> | undefined;
    try {
      const r = await start({
        signal,
        onText: (i, text) => {
          const role = open(i);
          if (text.length > 0 || role) sse.data(chunkJson(kind, meta, i, { text, role }));
        },
        onToolCalls: (i, calls) => {
          // As OpenAI streams them: per call, a delta with its id, type and name, then the arguments.
          calls.forEach((c, k) => {
            sse.data(chunkJson(kind, meta, i, { role: open(i), toolCalls: [{ index: k, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }));
            sse.data(chunkJson(kind, meta, i, { toolCalls: [{ index: k, function: { arguments: c.function.arguments } }] }));
          });
        },
        onFinish: (i, finish) => {
          if (held) sse.data(held);
          held = chunkJson(kind, meta, i, { role: open(i), finish, ...(kind === 'chat' ? {} : { text: '' }) }) as Record<string, unknown>;
        },
      });
      if (held) sse.data({ ...held, timings: timingsJson(r.timings) });
      if (spec.includeUsage) sse.data(usageChunkJson(kind, meta, r));
      sse.done();
    } catch (err) {
      sse.stop();
      if (!sse.started) throw err; // nothing sent yet: a plain error response
      const api = toApiError(err);
      if (!res.destroyed) {
        res.write(`data: ${JSON.stringify(api.toJSON())}\n\n`);
        res.end();
      }
      throw new StreamFailed(api);
    }
  }

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const origin = req.headers.origin;
    if (origin && corsOrigins?.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': 'authorization, content-type',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
    }
    // The client went away (or the connection broke) before the answer was complete: cancel its request.
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new AglmError('ABORTED', 'The client disconnected'));
    };
    res.on('close', onClose);
    const count = (status: number) => engine?.requests.inc({ endpoint: endpointOf(path), status: String(status) });
    route(req, res, path, controller.signal).then(
      () => count(res.statusCode),
      (err: unknown) => {
        if (err instanceof StreamFailed) {
          count(err.error.status);
          return;
        }
        const api = toApiError(err);
        count(api.status);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        sendError(res, api);
      },
    );
  }) as OpenAiHandler;

  Object.defineProperties(handler, {
    ready: { value: ready },
    engine: { get: () => engine },
    close: {
      value: async (opts?: { deadlineMs?: number }) => {
        closing = true;
        const e = await ready.catch(() => undefined);
        await e?.close(opts?.deadlineMs);
      },
    },
  });
  return handler;
}

/** A stream that failed after it began: the error went out as an event; only counted. */
class StreamFailed extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}
