// The gRPC server (proto/open_autoglm.proto) on the serving engine the HTTP API uses: the same admission, validation
// (each call becomes the HTTP API's request body and goes through the same checks) and errors, as gRPC statuses.
// @grpc/grpc-js and @grpc/proto-loader are optional dependencies, loaded only here.
import { createHash, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { AglmError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { ApiError, badParam, toApiError } from './api-error.js';
import type { GenerationResult, ServingEngine } from './engine.js';
import { requestId } from './openai-format.js';
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest } from './requests.js';

/** Where the service definition lives (in the package, beside dist/). */
export const PROTO_PATH = join(packageRoot, 'proto', 'open_autoglm.proto');

type GrpcModule = typeof import('@grpc/grpc-js');

async function loadGrpc(): Promise<{ grpc: GrpcModule; loader: typeof import('@grpc/proto-loader') }> {
  try {
    const [grpc, loader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
    type Loader = typeof import('@grpc/proto-loader');
    return { grpc: (grpc as { default?: GrpcModule }).default ?? grpc, loader: (loader as unknown as { default?: Loader }).default ?? (loader as Loader) };
  } catch (e) {
    throw new AglmError(
      'INVALID_ARGUMENT',
      'gRPC needs the optional dependencies @grpc/grpc-js and @grpc/proto-loader: npm install @grpc/grpc-js @grpc/proto-loader',
      { cause: e },
    );
  }
}

/** The service definition, for servers and for clients (`new (await loadServiceDefinition()).OpenAutoglm(...)`). */
export async function loadServiceDefinition(): Promise<{ grpc: GrpcModule; service: import('@grpc/grpc-js').ServiceClientConstructor }> {
  const { grpc, loader } = await loadGrpc();
  const def = loader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { open_autoglm: { v1: { OpenAutoglm: import('@grpc/grpc-js').ServiceClientConstructor } } };
  return { grpc, service: pkg.open_autoglm.v1.OpenAutoglm };
}

interface Sampling {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  seed?: number;
  max_tokens?: number;
  stop?: string[];
  logit_bias?: Record<string, number>;
  grammar?: string;
  json_schema?: string;
}

/** The HTTP API's body for a call's sampling message (proto3 optional fields are absent when unset). */
function samplingBody(s: Sampling | undefined, n: number | undefined): Record<string, unknown> {
  const o = s ?? {};
  const body: Record<string, unknown> = {
    temperature: o.temperature,
    top_p: o.top_p,
    top_k: o.top_k,
    min_p: o.min_p,
    repeat_penalty: o.repeat_penalty,
    presence_penalty: o.presence_penalty,
    frequency_penalty: o.frequency_penalty,
    seed: o.seed,
    max_tokens: o.max_tokens,
    stop: o.stop && o.stop.length > 0 ? o.stop : undefined,
    logit_bias: o.logit_bias && Object.keys(o.logit_bias).length > 0 ? o.logit_bias : undefined,
    n: n || undefined,
    grammar: o.grammar || undefined,
  };
  if (o.json_schema) {
    try {
      body.json_schema = JSON.parse(o.json_schema);
    } catch {
      throw badParam('sampling.json_schema', 'a JSON schema as JSON text', o.json_schema);
    }
  }
  return body;
}

function statusOf(grpc: GrpcModule, e: ApiError): number {
  const s = grpc.status;
  if (e.status === 401) return s.UNAUTHENTICATED;
  if (e.status === 404) return s.NOT_FOUND;
  if (e.status === 499) return s.CANCELLED;
  if (e.status === 503) return e.code === 'overloaded' || e.code === 'kv_cache_full' ? s.RESOURCE_EXHAUSTED : s.UNAVAILABLE;
  if (e.status >= 400 && e.status < 500) return s.INVALID_ARGUMENT;
  return s.INTERNAL;
}

function resultMessage(id: string, model: string, r: GenerationResult): object {
  return {
    id,
    model,
    choices: r.choices.map((c) => ({ index: c.index, text: c.text, tokens: c.tokens, finish_reason: c.finishReason })),
    usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.totalTokens, cached_tokens: r.usage.cachedTokens },
    timings: {
      prompt_n: r.timings.promptN,
      cache_n: r.timings.cacheN,
      prompt_ms: r.timings.promptMs,
      prompt_per_second: r.timings.promptPerSecond,
      predicted_n: r.timings.predictedN,
      predicted_ms: r.timings.predictedMs,
      predicted_per_second: r.timings.predictedPerSecond,
    },
  };
}

export interface GrpcServerOptions {
  host?: string;
  /** 0: any free port (see the returned port). */
  port: number;
  apiKey?: string;
}

export interface GrpcServer {
  /** The port bound (the one asked for, or the free one chosen for port 0). */
  readonly port: number;
  /**
   * Stops accepting calls and resolves when none is left. Calls in flight may finish; with `deadlineMs`, those still
   * running then are cancelled (UNAVAILABLE). Without it they end on their own or when the engine's close() cancels them.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

export async function startGrpcServer(engine: ServingEngine, options: GrpcServerOptions): Promise<GrpcServer> {
  const { grpc, service } = await loadServiceDefinition();
  const keyHash = options.apiKey ? createHash('sha256').update(options.apiKey).digest() : undefined;
  let closing = false;
  // Calls in flight, so close({ deadlineMs }) can cancel those still running at its deadline.
  const calls = new Set<AbortController>();

  type Call = import('@grpc/grpc-js').ServerUnaryCall<Record<string, unknown>, unknown> | import('@grpc/grpc-js').ServerWritableStream<Record<string, unknown>, unknown>;
  const guard = (call: Call): AbortController => {
    if (closing) throw new ApiError(503, 'server_error', 'The server is shutting down', { code: 'shutting_down' });
    if (keyHash) {
      const h = call.metadata.get('authorization')[0];
      const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
      if (!m || !timingSafeEqual(createHash('sha256').update(m[1]).digest(), keyHash)) {
        throw new ApiError(401, 'authentication_error', 'Missing or wrong API key (metadata authorization: Bearer <key>)', { code: 'invalid_api_key' });
      }
    }
    const c = new AbortController();
    call.on('cancelled', () => c.abort(new AglmError('ABORTED', 'The client cancelled the call')));
    calls.add(c);
    return c;
  };
  // Calls cancelled by close()'s deadline are UNAVAILABLE (the server shut down), not CANCELLED (the client gave up).
  const shutdownError = new ApiError(503, 'server_error', 'The server shut down before the call finished', { code: 'shutting_down' });
  const failure = (c: AbortController | undefined, e: unknown): ApiError =>
    c?.signal.aborted && c.signal.reason === shutdownError ? shutdownError : toApiError(e);
  const fail = (e: unknown) => {
    const api = toApiError(e);
    return Object.assign(new Error(api.message), { code: statusOf(grpc, api), details: api.message });
  };
  const count = (endpoint: string, status: number) => engine.requests.inc({ endpoint, status: String(status) });

  // The HTTP API's body for a Complete / Chat call.
  const completionBody = (r: Record<string, unknown>) => {
    const prompt = r.prompt === 'tokens' ? (r.tokens as { ids?: number[] } | undefined)?.ids ?? [] : r.text;
    return { model: r.model || undefined, prompt, ...samplingBody(r.sampling as Sampling, r.n as number) };
  };
  const chatBody = (r: Record<string, unknown>) => ({ model: r.model || undefined, messages: r.messages, ...samplingBody(r.sampling as Sampling, r.n as number) });

  const unary =
    (endpoint: string, run: (req: Record<string, unknown>, signal: AbortSignal) => Promise<object>) =>
    (call: import('@grpc/grpc-js').ServerUnaryCall<Record<string, unknown>, unknown>, callback: import('@grpc/grpc-js').sendUnaryData<unknown>) => {
      let c: AbortController | undefined;
      (async () => {
        c = guard(call);
        return run(call.request, c.signal);
      })().then(
        (res) => {
          count(endpoint, 200);
          callback(null, res);
        },
        (e) => {
          const api = failure(c, e);
          count(endpoint, api.status);
          callback(fail(api));
        },
      ).finally(() => c && calls.delete(c));
    };

  const streaming =
    (endpoint: string, run: (req: Record<string, unknown>, signal: AbortSignal, onText: (i: number, t: string) => void, onFinish: (i: number, f: string) => void) => Promise<GenerationResult>) =>
    (call: import('@grpc/grpc-js').ServerWritableStream<Record<string, unknown>, unknown>) => {
      let c: AbortController | undefined;
      (async () => {
        c = guard(call);
        const r = await run(
          call.request,
          c.signal,
          (index, text) => {
            if (text.length > 0) call.write({ index, text });
          },
          (index, finish) => call.write({ index, finish_reason: finish }),
        );
        call.write({
          index: 0,
          usage: { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.totalTokens, cached_tokens: r.usage.cachedTokens },
          timings: (resultMessage('', '', r) as { timings: object }).timings,
        });
      })().then(
        () => {
          count(endpoint, 200);
          call.end();
        },
        (e) => {
          const api = failure(c, e);
          count(endpoint, api.status);
          // A server-streaming call's status is sent by its 'error' listener (grpc-js), which ends the call after the
          // chunks already written; destroy(err) would tear the stream down without ever sending a status, leaving the
          // client waiting and tryShutdown() hanging.
          call.emit('error', fail(api));
        },
      ).finally(() => c && calls.delete(c));
    };

  const server = new grpc.Server();
  server.addService(service.service, {
    Health: (call: import('@grpc/grpc-js').ServerUnaryCall<unknown, unknown>, cb: import('@grpc/grpc-js').sendUnaryData<unknown>) =>
      closing ? cb(fail(new ApiError(503, 'server_error', 'The server is shutting down'))) : cb(null, { status: 'ok', model: engine.name }),
    Complete: unary('grpc:Complete', async (r, signal) => {
      const spec = parseCompletionRequest(completionBody(r), engine.name, engine.model.vocabSize, engine.parallel);
      return resultMessage(requestId('cmpl'), engine.name, await engine.complete(spec, { signal }));
    }),
    Chat: unary('grpc:Chat', async (r, signal) => {
      const spec = parseChatRequest(chatBody(r), engine.name, engine.model.vocabSize, engine.parallel, engine.model.vision !== undefined);
      return resultMessage(requestId('chatcmpl'), engine.name, await engine.chat(spec, { signal }));
    }),
    CompleteStream: streaming('grpc:CompleteStream', (r, signal, onText, onFinish) => {
      const spec = parseCompletionRequest(completionBody(r), engine.name, engine.model.vocabSize, engine.parallel);
      return engine.complete(spec, { signal, onText, onFinish });
    }),
    ChatStream: streaming('grpc:ChatStream', (r, signal, onText, onFinish) => {
      const spec = parseChatRequest(chatBody(r), engine.name, engine.model.vocabSize, engine.parallel, engine.model.vision !== undefined);
      return engine.chat(spec, { signal, onText, onFinish });
    }),
    Embed: unary('grpc:Embed', async (r, signal) => {
      const spec = parseEmbeddingRequest({ model: r.model || undefined, input: r.input }, engine.name, engine.model.vocabSize);
      const e = await engine.embed(spec, { signal });
      return {
        data: e.vectors.map((v) => ({ values: Array.from(v) })),
        usage: { prompt_tokens: e.promptTokens, completion_tokens: 0, total_tokens: e.promptTokens, cached_tokens: 0 },
      };
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host ?? '127.0.0.1'}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: async (closeOptions = {}) => {
      closing = true;
      // tryShutdown stops accepting calls and resolves once those in flight have ended: without a deadline they may
      // run to their end (or until the engine's own close() cancels them); at the deadline they are cancelled (their
      // clients get UNAVAILABLE) and their sequences freed, and a second later whatever is left is cut.
      const shut = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const deadline = closeOptions.deadlineMs;
      let timer: NodeJS.Timeout | undefined;
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          for (const c of calls) c.abort(shutdownError);
          timer = setTimeout(() => server.forceShutdown(), 1000);
        }, deadline);
      }
      try {
        await shut;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
