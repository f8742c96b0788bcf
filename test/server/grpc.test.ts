// The gRPC service (proto/open_autoglm.proto, startGrpcServer) as an outside client sees it: a @grpc/grpc-js client
// built from the repo's .proto with @grpc/proto-loader gets what the library computes: at temperature 0 exactly a
// Sequence's / model.complete's text for a text or token-id prompt, a one-turn ChatSession's reply for Chat, streamed
// chunks that add up to the same text with each choice's finish_reason and a last chunk with usage and timings, n
// seeded choices; Embed equals model.embed bit for bit. Errors are gRPC statuses (INVALID_ARGUMENT, NOT_FOUND,
// UNAUTHENTICATED, RESOURCE_EXHAUSTED), streaming ones included; a client cancelling a call frees its sequence at
// once; close() with a deadline cancels calls still running (UNAVAILABLE). HTTP and gRPC on one engine at the same
// time give the same texts, and `open-autoglm serve --grpc-port` answers gRPC and exits 0 on SIGTERM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { loadModel, type Model } from '../../lib/index.js';
import type { StopReason } from '../../lib/model/generate.js';
import { ServingEngine } from '../../lib/server/engine.js';
import { loadServiceDefinition, PROTO_PATH, startGrpcServer } from '../../lib/server/grpc.js';
import { createServer, type OpenAiHandler } from '../../lib/server/http.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';

const PROTO = join(repoRoot, 'proto', 'open_autoglm.proto');
const MODEL_ID = 'stories260K';
const API_KEY = 'grpc-sekret';
/** No call of this file should take long: a server that never answers fails the test instead of hanging it. */
const CALL_MS = 30_000;
/** EOS (id 2) pushed up so that greedy generation ends on it: finish_reason 'stop'. */
const EOS_BIAS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the client, as an outside user builds it ------------------------------------------------------------------

/** The usual proto-loader options of grpc's examples: field names as in the .proto, 64-bit ints as strings. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type Client = grpc.Client & Record<string, any>;

function protoClient(port: number, options: protoLoader.Options = LOADER_OPTIONS): Client {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, options)) as any;
  const client = new pkg.open_autoglm.v1.OpenAutoglm(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client;
  clients.push(client);
  return client;
}
const clients: Client[] = [];

interface Usage {
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
interface Timings {
  prompt_n: number;
  cache_n: number;
  prompt_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second: number;
}
interface Choice {
  index: number;
  text: string;
  tokens: number[];
  finish_reason: string;
}
interface GenerationResponse {
  id: string;
  model: string;
  choices: Choice[];
  usage: Usage;
  timings: Timings;
}
interface Chunk {
  index: number;
  text: string;
  finish_reason: string;
  usage: Usage | null;
  timings: Timings | null;
}

function metadata(apiKey?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (apiKey !== undefined) md.set('authorization', `Bearer ${apiKey}`);
  return md;
}

/** A unary call as a promise (with a deadline, so a server that never answers fails the call). */
function unary<T>(client: Client, method: string, request: object, md = metadata()): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](request, md, { deadline: Date.now() + CALL_MS }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

/** A server-streaming call's chunks and, if it failed, its error (a stream that never ends fails the test). */
function collect(stream: grpc.ClientReadableStream<Chunk>): Promise<{ chunks: Chunk[]; error?: grpc.ServiceError }> {
  return new Promise((resolve, reject) => {
    const chunks: Chunk[] = [];
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`the stream had no status after ${CALL_MS} ms (${chunks.length} chunks)`));
    }, CALL_MS);
    stream.on('data', (c: Chunk) => chunks.push(c));
    stream.on('error', (error: grpc.ServiceError) => {
      clearTimeout(timer);
      resolve({ chunks, error });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ chunks });
    });
  });
}

async function streamOk(stream: grpc.ClientReadableStream<Chunk>): Promise<Chunk[]> {
  const { chunks, error } = await collect(stream);
  assert.equal(error, undefined, `the stream failed: ${error?.code} ${error?.details}`);
  return chunks;
}

async function expectStatus(p: Promise<unknown>, code: grpc.status, details?: RegExp): Promise<void> {
  await assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `expected ${grpc.status[code]}, got ${grpc.status[e.code]}: ${e.details}`);
    if (details) assert.match(e.details, details);
    return true;
  });
}

async function expectStreamStatus(stream: grpc.ClientReadableStream<Chunk>, code: grpc.status, details?: RegExp): Promise<void> {
  const { chunks, error } = await collect(stream);
  assert.ok(error, `expected ${grpc.status[code]}, but the stream ended OK with ${chunks.length} chunks`);
  assert.equal(error.code, code, `expected ${grpc.status[code]}, got ${grpc.status[error.code]}: ${error.details}`);
  if (details) assert.match(error.details, details);
  assert.equal(chunks.length, 0, 'a refused call streams nothing');
}

/**
 * The stream's checks: per choice, text chunks then exactly one finish chunk (no text); the stream's last chunk
 * (index 0, no text, no finish_reason) has the usage and timings, no other has. Returns each choice's text.
 */
function checkStream(chunks: Chunk[], n: number): { texts: string[]; finish: string[]; usage: Usage; timings: Timings } {
  assert.ok(chunks.length >= n + 1);
  const last = chunks.at(-1)!;
  assert.equal(last.index, 0);
  assert.equal(last.text, '');
  assert.equal(last.finish_reason, '');
  assert.ok(last.usage && last.timings, 'the last chunk carries usage and timings');
  const texts = Array<string>(n).fill('');
  const finish = Array<string>(n).fill('');
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.usage, null, 'only the last chunk has usage');
    assert.equal(c.timings, null, 'only the last chunk has timings');
    assert.ok(c.index >= 0 && c.index < n, `chunk index ${c.index}`);
    assert.equal(finish[c.index], '', `choice ${c.index} has a chunk after its finish_reason`);
    if (c.finish_reason) {
      assert.equal(c.text, '');
      finish[c.index] = c.finish_reason;
    } else {
      assert.ok(c.text.length > 0, 'no empty text chunks');
      texts[c.index] += c.text;
    }
  }
  for (const f of finish) assert.match(f, /^(stop|length)$/, 'each choice has its finish_reason');
  return { texts, finish, usage: last.usage, timings: last.timings };
}

function checkTimings(t: Timings, usage: Usage): void {
  assert.equal(t.prompt_n + t.cache_n, usage.prompt_tokens);
  assert.equal(t.cache_n, usage.cached_tokens);
  assert.equal(t.predicted_n, usage.completion_tokens);
  assert.ok(t.prompt_ms > 0 && t.prompt_per_second > 0, JSON.stringify(t));
  assert.ok(t.predicted_ms >= 0 && t.predicted_per_second >= 0, JSON.stringify(t));
}

// ---- the library's answers -------------------------------------------------------------------------------------

let model: Model;

function finishOf(r: StopReason): 'stop' | 'length' {
  return r === 'eos' || r === 'stop' ? 'stop' : 'length';
}

interface LibCompletion {
  text: string;
  tokens: number[];
  finish: 'stop' | 'length';
  promptTokens: number;
}

/** Greedy completion on a Sequence of a context of its own, checked against model.complete. */
async function libComplete(
  prompt: string | number[],
  options: { maxTokens: number; stop?: string[]; logitBias?: Map<number, number> },
): Promise<LibCompletion> {
  await using ctx = model.createContext({ sequences: 1 });
  const seq = ctx.createSequence();
  const r = await seq.complete(prompt, { ...options, temperature: 0 });
  const m = await model.complete(prompt, { ...options, temperature: 0 });
  assert.equal(m.text, r.text, 'model.complete and Sequence.complete agree');
  const promptTokens = typeof prompt === 'string' ? model.tokenize(prompt).length : prompt.length;
  return { text: r.text, tokens: Array.from(r.tokens), finish: finishOf(r.stopReason), promptTokens };
}

/** A one-turn ChatSession's greedy reply. */
async function libChat(user: string, options: { maxTokens: number; system?: string }) {
  await using chat = model.createChatSession(options.system === undefined ? {} : { systemPrompt: options.system });
  const text = await chat.prompt(user, { maxTokens: options.maxTokens, temperature: 0 });
  const s = chat.lastTurnStats!;
  return { text, completionTokens: s.generatedTokens, promptTokens: s.promptTokens, finish: finishOf(s.stopReason as StopReason) };
}

// ---- the servers -----------------------------------------------------------------------------------------------

let engine: ServingEngine;
let server: { port: number; close(o?: { deadlineMs?: number }): Promise<void> };
let client: Client;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  model = await loadModel();
  engine = new ServingEngine(model, { parallel: 4, contextSize: 1024 });
  server = await startGrpcServer(engine, { port: 0 });
  closers.push(() => server.close({ deadlineMs: 0 }), () => engine.close(0));
  client = protoClient(server.port);
});

after(async () => {
  for (const c of clients) c.close();
  for (const close of closers.reverse()) await close().catch(() => {});
  model?.dispose();
});

/** A gRPC server of its own (an engine of its own unless given one), closed after the file. */
async function ownServer(options: { engine?: ServingEngine; parallel?: number; maxQueue?: number; contextSize?: number; apiKey?: string }) {
  const e = options.engine ?? new ServingEngine(model, { parallel: options.parallel, maxQueue: options.maxQueue, contextSize: options.contextSize });
  const s = await startGrpcServer(e, { port: 0, apiKey: options.apiKey });
  closers.push(() => s.close({ deadlineMs: 0 }));
  if (!options.engine) closers.push(() => e.close(0));
  return { engine: e, server: s, client: protoClient(s.port) };
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<number> {
  const t0 = performance.now();
  while (!ok()) {
    assert.ok(performance.now() - t0 < ms, `${what} within ${ms} ms`);
    await sleep(2);
  }
  return performance.now() - t0;
}

// ---- the tests -------------------------------------------------------------------------------------------------

test('Health answers ok with the model id; the library helper builds the same service from the same file', async () => {
  assert.deepEqual(await unary(client, 'Health', {}), { status: 'ok', model: MODEL_ID });
  assert.equal(PROTO_PATH, PROTO);
  const { grpc: g, service } = await loadServiceDefinition();
  const own = new service(`127.0.0.1:${server.port}`, g.credentials.createInsecure()) as Client;
  clients.push(own);
  assert.deepEqual(await unary(own, 'Health', {}), { status: 'ok', model: MODEL_ID });
  const paths = (s: grpc.ServiceDefinition) => Object.values(s).map((m) => [m.path, m.requestStream, m.responseStream]);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, LOADER_OPTIONS)) as any;
  assert.deepEqual(paths(service.service), paths(pkg.open_autoglm.v1.OpenAutoglm.service));
  assert.deepEqual(
    paths(service.service).map(([p]) => p),
    ['Health', 'Complete', 'CompleteStream', 'Chat', 'ChatStream', 'Embed'].map((m) => `/open_autoglm.v1.OpenAutoglm/${m}`),
  );
});

test('Complete with a text prompt and with token ids is, at temperature 0, exactly Sequence.complete / model.complete', async () => {
  const ids = Array.from(model.tokenize('The little dog'));
  const cases: { prompt: string | number[]; maxTokens: number; stop?: string[]; eos?: boolean }[] = [
    { prompt: 'Once upon a time', maxTokens: 48 },
    { prompt: ids, maxTokens: 40 },
    { prompt: 'Lily wanted to', maxTokens: 64, stop: [' box'] },
    { prompt: 'Once upon a time', maxTokens: 64, eos: true },
  ];
  const finishes = new Set<string>();
  for (const c of cases) {
    const logitBias = c.eos ? new Map([[2, EOS_BIAS]]) : undefined;
    const ref = await libComplete(c.prompt, { maxTokens: c.maxTokens, stop: c.stop, logitBias });
    const req = {
      ...(typeof c.prompt === 'string' ? { text: c.prompt } : { tokens: { ids: c.prompt } }),
      sampling: { temperature: 0, max_tokens: c.maxTokens, stop: c.stop ?? [], logit_bias: c.eos ? { 2: EOS_BIAS } : {} },
    };
    const r = await unary<GenerationResponse>(client, 'Complete', req);
    const what = JSON.stringify(c);
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.model, MODEL_ID);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].text, ref.text, what);
    assert.deepEqual(r.choices[0].tokens, ref.tokens, what);
    assert.equal(r.choices[0].finish_reason, ref.finish, what);
    assert.deepEqual({ ...r.usage, cached_tokens: 0 }, { prompt_tokens: ref.promptTokens, completion_tokens: ref.tokens.length, total_tokens: ref.promptTokens + ref.tokens.length, cached_tokens: 0 });
    checkTimings(r.timings, r.usage);
    finishes.add(ref.finish);
  }
  assert.deepEqual([...finishes].sort(), ['length', 'stop'], 'the cases end both ways');

  // A client with proto-loader's default options (camelCase fields, no defaults filled in) sends the same bytes.
  const camel = protoClient(server.port, {});
  const ref = await libComplete('Once upon a time', { maxTokens: 48 });
  const r = await unary<any>(camel, 'Complete', { text: 'Once upon a time', sampling: { temperature: 0, maxTokens: 48 } });
  assert.equal(r.choices[0].text, ref.text);
  assert.equal(r.choices[0].finishReason, 'length');
  assert.equal(r.usage.completionTokens, 48);
  // Unset sampling is the HTTP API's defaults: a completion is 16 tokens.
  const d = await unary<GenerationResponse>(client, 'Complete', { text: 'Once upon a time', sampling: { temperature: 0 } });
  assert.equal(d.choices[0].text, (await libComplete('Once upon a time', { maxTokens: 16 })).text);
});

test('CompleteStream: the chunks add up to the same text, each choice finishes, the last chunk has usage and timings', async () => {
  for (const prompt of ['Once upon a time', Array.from(model.tokenize('The little dog'))]) {
    const ref = await libComplete(prompt, { maxTokens: 40 });
    const req = { ...(typeof prompt === 'string' ? { text: prompt } : { tokens: { ids: prompt } }), sampling: { temperature: 0, max_tokens: 40 } };
    const chunks = await streamOk(client.CompleteStream(req));
    const s = checkStream(chunks, 1);
    assert.equal(s.texts[0], ref.text);
    assert.deepEqual(s.finish, [ref.finish]);
    assert.ok(chunks.length > 10, 'streamed piece by piece');
    assert.deepEqual({ ...s.usage, cached_tokens: 0 }, { prompt_tokens: ref.promptTokens, completion_tokens: ref.tokens.length, total_tokens: ref.promptTokens + ref.tokens.length, cached_tokens: 0 });
    checkTimings(s.timings, s.usage);
  }
  // A stop string: the stream holds back what might start it and ends with 'stop'.
  const stopRef = await libComplete('Lily wanted to', { maxTokens: 64, stop: [' box'] });
  assert.equal(stopRef.finish, 'stop');
  const st = checkStream(await streamOk(client.CompleteStream({ text: 'Lily wanted to', sampling: { temperature: 0, max_tokens: 64, stop: [' box'] } })), 1);
  assert.equal(st.texts[0], stopRef.text);
  assert.deepEqual(st.finish, ['stop']);
});

test('n: 2 with a seed gives 2 choices, each the seeded library completion (seed + i), streamed or not', async () => {
  const prompt = 'Once upon a time';
  const refs = await Promise.all(
    [0, 1].map((i) => model.complete(prompt, { seed: 7 + i, temperature: 1, topP: 1, topK: 0, minP: 0, maxTokens: 30 })),
  );
  assert.notEqual(refs[0].text, refs[1].text);
  const req = { text: prompt, n: 2, sampling: { seed: '7', max_tokens: 30 } };
  const r = await unary<GenerationResponse>(client, 'Complete', req);
  assert.deepEqual(
    r.choices.map((c) => [c.index, c.text, c.finish_reason]),
    refs.map((ref, i) => [i, ref.text, finishOf(ref.stopReason)]),
  );
  assert.equal(r.usage.completion_tokens, refs[0].tokens.length + refs[1].tokens.length);
  const s = checkStream(await streamOk(client.CompleteStream(req)), 2);
  assert.deepEqual(s.texts, refs.map((ref) => ref.text));
  assert.deepEqual({ ...s.usage, cached_tokens: 0 }, { ...r.usage, cached_tokens: 0 });
  // Chat takes n too.
  const c = await unary<GenerationResponse>(client, 'Chat', { messages: [{ role: 'user', content: 'Hi' }], n: 2, sampling: { seed: '3', max_tokens: 12 } });
  assert.deepEqual(c.choices.map((x) => x.index), [0, 1]);
});

test('Chat and ChatStream are, at temperature 0, exactly a one-turn ChatSession reply', async () => {
  const cases = [
    { user: 'Hello', maxTokens: 40 },
    { user: 'Tell me a story about a cat.', maxTokens: 32, system: 'You are a story teller.' },
  ];
  for (const c of cases) {
    const ref = await libChat(c.user, c);
    assert.ok(ref.text.length > 0);
    const messages = [...(c.system ? [{ role: 'system', content: c.system }] : []), { role: 'user', content: c.user }];
    const req = { messages, sampling: { temperature: 0, max_tokens: c.maxTokens } };
    const r = await unary<GenerationResponse>(client, 'Chat', req);
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].text, ref.text, JSON.stringify(c));
    assert.equal(r.choices[0].finish_reason, ref.finish);
    assert.deepEqual({ ...r.usage, cached_tokens: 0 }, { prompt_tokens: ref.promptTokens, completion_tokens: ref.completionTokens, total_tokens: ref.promptTokens + ref.completionTokens, cached_tokens: 0 });
    const s = checkStream(await streamOk(client.ChatStream(req)), 1);
    assert.equal(s.texts[0], ref.text, JSON.stringify(c));
    assert.deepEqual(s.finish, [ref.finish]);
    assert.deepEqual({ ...s.usage, cached_tokens: 0 }, { ...r.usage, cached_tokens: 0 });
    assert.ok(s.usage.cached_tokens >= r.usage.cached_tokens, "the stream reuses the unary call's prompt");
    checkTimings(s.timings, s.usage);
  }
});

test('Embed equals model.embed bit for bit (float32 values)', async () => {
  const texts = ['Once upon a time', 'The little dog', 'A cat sat on the mat.'];
  const ref = await model.embed(texts);
  const r = await unary<{ data: { values: number[] }[]; usage: Usage }>(client, 'Embed', { input: texts });
  assert.equal(r.data.length, texts.length);
  r.data.forEach((d, i) => {
    assert.equal(d.values.length, model.hiddenSize);
    assert.deepEqual(Float32Array.from(d.values), ref[i]);
    assert.deepEqual(d.values, Array.from(ref[i]), 'the wire values are the float32 values themselves');
  });
  const promptTokens = texts.reduce((n, t) => n + model.tokenize(t).length, 0);
  assert.deepEqual(r.usage, { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens, cached_tokens: 0 });
  const one = await unary<{ data: { values: number[] }[] }>(client, 'Embed', { input: ['hello'] });
  assert.deepEqual(Float32Array.from(one.data[0].values), (await model.embed('hello'))[0]);
});

test('bad requests are INVALID_ARGUMENT and an unknown model NOT_FOUND, on unary and streaming calls alike', async () => {
  const INVALID = grpc.status.INVALID_ARGUMENT;
  const ok = { temperature: 0, max_tokens: 4 };
  const user = [{ role: 'user', content: 'Hi' }];
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { temperature: 5 } }), INVALID, /temperature/);
  await expectStatus(unary(client, 'Chat', { messages: user, sampling: { temperature: 5 } }), INVALID, /temperature/);
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { max_tokens: 0 } }), INVALID, /max_tokens/);
  await expectStatus(unary(client, 'Chat', { messages: user, sampling: { max_tokens: 0 } }), INVALID, /max_tokens/);
  await expectStatus(unary(client, 'Chat', { messages: [], sampling: ok }), INVALID, /messages/);
  await expectStatus(unary(client, 'Chat', { messages: [{ role: 'wizard', content: 'Hi' }], sampling: ok }), INVALID, /role/);
  await expectStatus(unary(client, 'Complete', { sampling: ok }), INVALID, /prompt/);
  await expectStatus(unary(client, 'Complete', { tokens: { ids: [1, model.vocabSize] }, sampling: ok }), INVALID, /prompt\[1\]/);
  await expectStatus(unary(client, 'Complete', { text: 'x', n: 5, sampling: ok }), INVALID, /\bn\b/);
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { ...ok, top_p: 1.5 } }), INVALID, /top_p/);
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { ...ok, logit_bias: { [model.vocabSize]: 1 } } }), INVALID, /logit_bias/);
  await expectStatus(unary(client, 'Embed', { input: [] }), INVALID, /input/);
  // Streaming calls end with the status, and nothing streamed, before any generation.
  await expectStreamStatus(client.CompleteStream({ text: 'x', sampling: { temperature: 5 } }), INVALID, /temperature/);
  await expectStreamStatus(client.ChatStream({ messages: [], sampling: ok }), INVALID, /messages/);
  await expectStreamStatus(client.ChatStream({ messages: user, sampling: { max_tokens: 0 } }), INVALID, /max_tokens/);

  const NOT_FOUND = grpc.status.NOT_FOUND;
  await expectStatus(unary(client, 'Complete', { model: 'gpt-4', text: 'x', sampling: ok }), NOT_FOUND, /gpt-4/);
  await expectStatus(unary(client, 'Chat', { model: 'gpt-4', messages: user, sampling: ok }), NOT_FOUND, /gpt-4/);
  await expectStatus(unary(client, 'Embed', { model: 'gpt-4', input: ['x'] }), NOT_FOUND, /gpt-4/);
  await expectStreamStatus(client.CompleteStream({ model: 'gpt-4', text: 'x', sampling: ok }), NOT_FOUND, /gpt-4/);
  await expectStreamStatus(client.ChatStream({ model: 'gpt-4', messages: user, sampling: ok }), NOT_FOUND, /gpt-4/);
  // Naming the served model is fine, and the server still answers after all that.
  const r = await unary<GenerationResponse>(client, 'Complete', { model: MODEL_ID, text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 8 } });
  assert.equal(r.choices[0].text, (await libComplete('Once upon a time', { maxTokens: 8 })).text);
  assert.equal(engine.activeSequences, 0);
});

test('Sampling.grammar and Sampling.json_schema hold the output as the library does; bad ones are INVALID_ARGUMENT', async () => {
  const gbnf = 'root ::= "do(action=\\"" ("Tap" | "Back") "\\")"\n';
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['ok', 'n'] };
  for (const [sampling, opts] of [
    [{ grammar: gbnf }, { grammar: gbnf }],
    [{ json_schema: JSON.stringify(schema) }, { jsonSchema: schema }],
  ] as const) {
    await using ctx = model.createContext({ sequences: 1 });
    const want = await ctx.createSequence().complete('Once upon a time', { ...opts, temperature: 0, maxTokens: 64 });
    const r = await unary<GenerationResponse>(client, 'Complete', { text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 64, ...sampling } });
    assert.equal(r.choices[0].text, want.text, JSON.stringify(sampling));
    assert.equal(r.choices[0].finish_reason, 'stop');
  }
  const INVALID = grpc.status.INVALID_ARGUMENT;
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { grammar: 'root ::= nope\n' } }), INVALID, /nope/);
  await expectStatus(unary(client, 'Complete', { text: 'x', sampling: { json_schema: '{not json' } }), INVALID, /json_schema/);
  await expectStreamStatus(client.ChatStream({ messages: [{ role: 'user', content: 'Hi' }], sampling: { json_schema: '{"type":"string","pattern":"x"}' } }), INVALID, /pattern/);
});

test('with an API key, calls without it or with a wrong one are UNAUTHENTICATED; Health needs none', async () => {
  const { client: keyed } = await ownServer({ engine, apiKey: API_KEY });
  const req = { text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 12 } };
  const UNAUTH = grpc.status.UNAUTHENTICATED;
  await expectStatus(unary(keyed, 'Complete', req), UNAUTH);
  await expectStatus(unary(keyed, 'Complete', req, metadata('wrong')), UNAUTH);
  await expectStatus(unary(keyed, 'Complete', req, metadata('')), UNAUTH);
  const basic = new grpc.Metadata();
  basic.set('authorization', `Basic ${API_KEY}`);
  await expectStatus(unary(keyed, 'Complete', req, basic), UNAUTH);
  await expectStatus(unary(keyed, 'Chat', { messages: [{ role: 'user', content: 'Hi' }] }, metadata('wrong')), UNAUTH);
  await expectStatus(unary(keyed, 'Embed', { input: ['x'] }), UNAUTH);
  await expectStreamStatus(keyed.CompleteStream(req), UNAUTH);
  await expectStreamStatus(keyed.ChatStream({ messages: [{ role: 'user', content: 'Hi' }] }, metadata('wrong')), UNAUTH);
  assert.deepEqual(await unary(keyed, 'Health', {}), { status: 'ok', model: MODEL_ID });
  const ref = await libComplete('Once upon a time', { maxTokens: 12 });
  const r = await unary<GenerationResponse>(keyed, 'Complete', req, metadata(API_KEY));
  assert.equal(r.choices[0].text, ref.text);
  const s = checkStream(await streamOk(keyed.CompleteStream(req, metadata(API_KEY))), 1);
  assert.equal(s.texts[0], ref.text);
});

test('a full queue is RESOURCE_EXHAUSTED; a client cancelling a call frees its sequence at once and the server keeps serving', async () => {
  const { engine: busy, client: c } = await ownServer({ parallel: 1, maxQueue: 0, contextSize: 4096 });
  // Greedy stories260K text never ends by itself: this stream would run for 4000 tokens (seconds).
  const long = c.CompleteStream({ text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 4000 } });
  const done = collect(long);
  let received = '';
  await new Promise<void>((resolve) => long.once('data', () => resolve()));
  long.on('data', (ch: Chunk) => (received += ch.text));
  assert.equal(busy.activeSequences, 1);
  const EXHAUSTED = grpc.status.RESOURCE_EXHAUSTED;
  const req = { text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 8 } };
  await expectStatus(unary(c, 'Complete', req), EXHAUSTED, /busy/);
  await expectStatus(unary(c, 'Chat', { messages: [{ role: 'user', content: 'Hi' }], sampling: { max_tokens: 4 } }), EXHAUSTED);
  await expectStatus(unary(c, 'Embed', { input: ['x'] }), EXHAUSTED);
  await expectStreamStatus(c.CompleteStream(req), EXHAUSTED);
  await expectStreamStatus(c.ChatStream({ messages: [{ role: 'user', content: 'Hi' }] }), EXHAUSTED);
  assert.equal(busy.activeSequences, 1, 'the long stream is still running');

  long.cancel();
  const { error } = await done;
  assert.equal(error?.code, grpc.status.CANCELLED);
  const freed = await until('the cancelled stream frees its sequence', () => busy.activeSequences === 0, 2000);
  assert.ok(received.length > 0 && received.length < 4000, `cancelled mid-way (${received.length} chars)`);
  assert.equal(busy.context.cellsUsed, 0, `its cells are freed (${freed.toFixed(0)} ms)`);
  const ref = await libComplete('Once upon a time', { maxTokens: 8 });
  assert.equal((await unary<GenerationResponse>(c, 'Complete', req)).choices[0].text, ref.text);

  // A unary call cancelled by its client frees its sequence too.
  let unaryError: grpc.ServiceError | null | undefined;
  const unaryCall = c.Complete({ text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 4000 } }, (err: grpc.ServiceError | null) => {
    unaryError = err;
  }) as grpc.ClientUnaryCall;
  // (The prompt cache holds the earlier request's cells; the call shares them, so count beyond those.)
  await until('the unary call to start generating', () => busy.activeSequences === 1 && busy.context.cellsUsed > busy.promptCacheTokens + 8);
  unaryCall.cancel();
  await until('the cancelled unary call frees its sequence', () => busy.activeSequences === 0, 2000);
  await until('the unary call to end', () => unaryError !== undefined);
  assert.equal(unaryError?.code, grpc.status.CANCELLED);
  const s = checkStream(await streamOk(c.CompleteStream(req)), 1);
  assert.equal(s.texts[0], ref.text);
  // The server counted the refusals and the cancellations under the HTTP statuses they stand for.
  const metrics = busy.metrics.render();
  assert.match(metrics, /aglm_requests_total\{endpoint="grpc:CompleteStream",status="499"\} 1\b/);
  assert.match(metrics, /aglm_requests_total\{endpoint="grpc:Complete",status="499"\} 1\b/);
  assert.match(metrics, /aglm_requests_total\{endpoint="grpc:Complete",status="503"\} 1\b/);
});

test('close() with a deadline cancels the calls still running (UNAVAILABLE), frees their sequences and resolves', async () => {
  const e = new ServingEngine(model, { parallel: 2, contextSize: 4096 });
  closers.push(() => e.close(0));
  const s = await startGrpcServer(e, { port: 0 });
  const c = protoClient(s.port);
  const long = c.CompleteStream({ text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 4000 } });
  const done = collect(long);
  await new Promise<void>((resolve) => long.once('data', () => resolve()));
  const t0 = performance.now();
  await s.close({ deadlineMs: 50 });
  const ms = performance.now() - t0;
  assert.ok(ms < 3000, `close took ${ms.toFixed(0)} ms`);
  const { chunks, error } = await done;
  assert.equal(error?.code, grpc.status.UNAVAILABLE, `${error?.code} ${error?.details}`);
  assert.ok(chunks.length > 0);
  assert.equal(e.activeSequences, 0);
});

test('HTTP (the official openai client) and gRPC on one engine at the same time give identical texts', async () => {
  const handler: OpenAiHandler = createServer(model, { parallel: 4, contextSize: 1024 });
  const http: Server = createHttpServer(handler);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const shared = await handler.ready;
  const g = await startGrpcServer(shared, { port: 0 });
  closers.push(async () => {
    await g.close({ deadlineMs: 0 });
    await handler.close({ deadlineMs: 0 });
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  const c = protoClient(g.port);
  const openai = new OpenAI({ baseURL: `http://127.0.0.1:${(http.address() as AddressInfo).port}/v1`, apiKey: 'x', maxRetries: 0, timeout: CALL_MS });

  // A long gRPC stream in flight while HTTP answers; then a long HTTP stream in flight while gRPC answers.
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, shared.activeSequences)), 1);
  const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to'];
  const grpcLong = c.CompleteStream({ text: prompts[0], sampling: { temperature: 0, max_tokens: 300 } });
  const grpcLongDone = streamOk(grpcLong);
  await new Promise<void>((resolve) => grpcLong.once('data', () => resolve()));
  const [httpShort, grpcShort] = await Promise.all([
    openai.completions.create({ model: MODEL_ID, prompt: prompts[1], max_tokens: 40, temperature: 0 }),
    unary<GenerationResponse>(c, 'Complete', { text: prompts[1], sampling: { temperature: 0, max_tokens: 40 } }),
  ]);
  const httpLong = await openai.completions.create({ model: MODEL_ID, prompt: prompts[0], max_tokens: 300, temperature: 0, stream: true });
  let httpLongText = '';
  const httpLongDone = (async () => {
    for await (const chunk of httpLong) httpLongText += chunk.choices[0]?.text ?? '';
  })();
  const grpcWhileHttp = await unary<GenerationResponse>(c, 'Complete', { text: prompts[2], sampling: { temperature: 0, max_tokens: 40 } });
  const httpWhileGrpc = await openai.completions.create({ model: MODEL_ID, prompt: prompts[2], max_tokens: 40, temperature: 0 });
  const grpcLongText = checkStream(await grpcLongDone, 1).texts[0];
  await httpLongDone;
  clearInterval(sampler);
  assert.ok(peak >= 2, `HTTP and gRPC requests were generating at the same time (peak ${peak} sequences)`);

  assert.equal(grpcShort.choices[0].text, httpShort.choices[0].text);
  assert.equal(grpcShort.choices[0].text, (await libComplete(prompts[1], { maxTokens: 40 })).text);
  assert.equal(grpcWhileHttp.choices[0].text, httpWhileGrpc.choices[0].text);
  assert.equal(grpcWhileHttp.choices[0].text, (await libComplete(prompts[2], { maxTokens: 40 })).text);
  assert.equal(grpcLongText, httpLongText);
  assert.equal(grpcLongText, (await libComplete(prompts[0], { maxTokens: 300 })).text);

  // Chat and embeddings too.
  const messages = [{ role: 'user' as const, content: 'Hello' }];
  const [httpChat, grpcChat] = await Promise.all([
    openai.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 30, temperature: 0 }),
    unary<GenerationResponse>(c, 'Chat', { messages, sampling: { temperature: 0, max_tokens: 30 } }),
  ]);
  assert.equal(grpcChat.choices[0].text, httpChat.choices[0].message.content);
  assert.equal(grpcChat.choices[0].text, (await libChat('Hello', { maxTokens: 30 })).text);
  const [httpEmb, grpcEmb] = await Promise.all([
    openai.embeddings.create({ model: MODEL_ID, input: ['Once upon a time', 'hello'] }),
    unary<{ data: { values: number[] }[] }>(c, 'Embed', { input: ['Once upon a time', 'hello'] }),
  ]);
  assert.deepEqual(
    grpcEmb.data.map((d) => d.values),
    httpEmb.data.map((d) => d.embedding),
  );
  assert.equal(shared.activeSequences, 0);
});

test('open-autoglm serve --grpc-port answers Health and Complete over gRPC and exits 0 on SIGTERM', { timeout: 60_000 }, async (t) => {
  const args = ['serve', '--port', '0', '--grpc-port', '0', '--parallel', '2', '--ctx-size', '1024', '--shutdown-timeout', '20'];
  const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cli-main.ts'), ...args], { cwd: repoRoot });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  t.after(() => {
    clearTimeout(killer);
    child.kill('SIGKILL');
  });
  const t0 = performance.now();
  let m: RegExpExecArray | null = null;
  while (!(m = /gRPC on 127\.0\.0\.1:(\d+)/.exec(stderr))) {
    assert.equal(child.exitCode, null, `serve exited early: ${stderr}`);
    assert.ok(performance.now() - t0 < 30_000, `no gRPC port in: ${stderr}`);
    await sleep(10);
  }
  const c = protoClient(Number(m[1]));
  assert.deepEqual(await unary(c, 'Health', {}), { status: 'ok', model: MODEL_ID });
  const ref = await libComplete('Once upon a time', { maxTokens: 32 });
  const r = await unary<GenerationResponse>(c, 'Complete', { text: 'Once upon a time', sampling: { temperature: 0, max_tokens: 32 } });
  assert.equal(r.choices[0].text, ref.text);
  assert.deepEqual(r.choices[0].tokens, ref.tokens);

  // SIGTERM with a stream in flight: the stream finishes (graceful shutdown), then the process exits 0.
  const longRef = await libComplete('The little dog', { maxTokens: 200 });
  const long = c.CompleteStream({ text: 'The little dog', sampling: { temperature: 0, max_tokens: 200 } });
  const longDone = streamOk(long);
  await new Promise<void>((resolve) => long.once('data', () => resolve()));
  child.kill('SIGTERM');
  assert.equal(checkStream(await longDone, 1).texts[0], longRef.text);
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /SIGTERM: shutting down/);
});

// A SIGTERM while the model is still loading starts the shutdown before there is a gRPC server to close: serve must not
// start one after that (or must close it), or the process never exits. A model that takes a moment to load makes the
// window wide enough to hit.
test(
  'serve --grpc-port: SIGTERM while the model loads still exits 0',
  { timeout: 60_000 },
  async (t) => {
    const path = join(tempDir(t), 'slow-load.gguf');
    await writeRandomLlamaModel(path, {
      embeddingLength: 1024, blockCount: 8, headCount: 16, headCountKv: 4, feedForwardLength: 2816, vocabSize: 4096, contextLength: 1024,
    });
    const args = ['serve', '--model', path, '--port', '0', '--grpc-port', '0'];
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cli-main.ts'), ...args], { cwd: repoRoot });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      if (/listening on/.test(s)) setTimeout(() => child.kill('SIGTERM'), 50);
    });
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code, signal) => {
        stderr += `[exit code ${code}, signal ${signal}]\n`;
        resolve(code);
      }),
    );
    t.after(() => child.kill('SIGKILL'));
    const code = await Promise.race([exited, sleep(5000).then(() => 'still running 5 s after SIGTERM')]);
    assert.match(stderr, /SIGTERM: shutting down/);
    assert.equal(code, 0, stderr);
  },
);
