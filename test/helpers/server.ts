// Helpers for the HTTP server tests: createServer listening on an ephemeral loopback port, raw requests (bytes the
// fetch API would not send), Server-Sent Events read with their arrival times, and /metrics values.
import { request, createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Model } from '../../lib/model/model.js';
import { createServer, type OpenAiHandler, type ServerOptions } from '../../lib/server/http.js';

export interface Listening {
  handler: OpenAiHandler;
  server: Server;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Closes the handler (in-flight requests cancelled), then the listener and every connection. */
  close(): Promise<void>;
}

export async function listen(model: Model | Promise<Model>, options?: ServerOptions): Promise<Listening> {
  const handler = createServer(model, options);
  const server = createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    handler,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await handler.close({ deadlineMs: 0 }).catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined if it is not JSON). */
  json: any;
}

/** One request with node:http: any body bytes, any headers, chunked when no content-length is given. */
export function rawRequest(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: Buffer[] },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${options.path}`, { method: options.method ?? 'POST', headers: options.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (options.chunks) {
      // Written one by one (chunked encoding); a write after the server answered may fail, which is fine.
      for (const c of options.chunks) req.write(c, () => {});
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** JSON POST with fetch. */
export async function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json };
}

export interface SseEvent {
  /** ms (performance.now()) when the event's last line arrived. */
  at: number;
  /** `data:` payload, or undefined for a comment. */
  data?: string;
  /** `: comment` text. */
  comment?: string;
}

/** Splits an SSE byte stream into events and comments as they arrive. */
export class SseParser {
  readonly events: SseEvent[] = [];
  #buffer = '';
  readonly #decoder = new TextDecoder();
  push(chunk: Uint8Array): void {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const at = performance.now();
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.events.push({ at, comment: line.slice(1).trim() });
        else if (line.startsWith('data: ')) this.events.push({ at, data: line.slice(6) });
      }
    }
  }
  /** Bytes after the last complete event (a stream must not end inside one). */
  get rest(): string {
    return this.#buffer;
  }
}

/** A streaming POST read to its end with fetch: status, headers and every event. */
export async function postSse(url: string, path: string, body: unknown): Promise<{ status: number; headers: Headers; events: SseEvent[]; rest: string }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const parser = new SseParser();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.push(chunk);
  return { status: res.status, headers: res.headers, events: parser.events, rest: parser.rest };
}

/** The value of one sample of /metrics text (labels matched exactly, in any order); undefined if absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_])/)
      .filter((s) => s.length > 0)
      .sort()
      .join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

export async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** OpenAI's error body shape, checked field by field. */
export function assertErrorShape(body: any): { message: string; type: string; param: string | null; code: string | null } {
  if (body === null || typeof body !== 'object' || typeof body.error !== 'object' || body.error === null) {
    throw new Error(`not an OpenAI error body: ${JSON.stringify(body)}`);
  }
  const e = body.error;
  const keys = Object.keys(e).sort().join(',');
  if (keys !== 'code,message,param,type') throw new Error(`error keys are ${keys}`);
  if (typeof e.message !== 'string' || e.message.length === 0) throw new Error(`error.message is ${JSON.stringify(e.message)}`);
  if (typeof e.type !== 'string') throw new Error(`error.type is ${JSON.stringify(e.type)}`);
  if (e.param !== null && typeof e.param !== 'string') throw new Error(`error.param is ${JSON.stringify(e.param)}`);
  if (e.code !== null && typeof e.code !== 'string') throw new Error(`error.code is ${JSON.stringify(e.code)}`);
  return e;
}
