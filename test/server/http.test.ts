// The OpenAI-compatible HTTP server (createServer) as a client sees it: the official `openai` npm client, unchanged,
// gets at temperature 0 exactly the library's text for completions and chats, streamed or not, with the right
// finish_reason and usage; embeddings equal model.embed bit for bit; n choices with a seed. Bad requests are 4xx in
// OpenAI's error shape and leave the server answering. /health follows the model's loading, /metrics counts requests
// by status and has the latency histograms, /tokenize and /detokenize round-trip.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { loadModel, type Model } from '../../lib/index.js';
import type { StopReason } from '../../lib/model/generate.js';
import { assertErrorShape, listen, metricValue, postJson, postSse, rawRequest, scrape, type Listening } from '../helpers/server.js';

const MODEL_ID = 'stories260K';
const API_KEY = 'sekret-key';

let model: Model;
let main: Listening;
let strict: Listening;
let client: OpenAI;

before(async () => {
  model = await loadModel();
  main = await listen(model, { parallel: 4 });
  // The server the bad requests go to: an API key, a small context and a small body limit.
  strict = await listen(model, { parallel: 2, contextSize: 64, apiKey: API_KEY, maxBodyBytes: 4096 });
  client = new OpenAI({ baseURL: `${main.url}/v1`, apiKey: 'anything', maxRetries: 0, timeout: 30_000 });
});

after(async () => {
  await main?.close();
  await strict?.close();
  model?.dispose();
});

function finishOf(r: StopReason): 'stop' | 'length' {
  return r === 'eos' || r === 'stop' ? 'stop' : 'length';
}

/** The library's completion on a sequence of a context of its own. */
async function libComplete(prompt: string, options: { maxTokens: number; stop?: string[]; logitBias?: Map<number, number> }) {
  await using ctx = model.createContext({ sequences: 1 });
  const seq = ctx.createSequence();
  const r = await seq.complete(prompt, { ...options, temperature: 0 });
  return { text: r.text, completionTokens: r.tokens.length, promptTokens: model.tokenize(prompt).length, finish: finishOf(r.stopReason) };
}

/** The library's one-turn chat. */
async function libChat(user: string, options: { maxTokens: number; system?: string; logitBias?: Map<number, number> }) {
  await using chat = model.createChatSession(options.system === undefined ? {} : { systemPrompt: options.system });
  const text = await chat.prompt(user, { maxTokens: options.maxTokens, logitBias: options.logitBias, temperature: 0 });
  const s = chat.lastTurnStats!;
  return { text, completionTokens: s.generatedTokens, promptTokens: s.promptTokens, finish: finishOf(s.stopReason as StopReason) };
}

/** EOS (id 2) pushed up so that greedy generation ends on it after some tokens: finish_reason 'stop' by EOS. */
const EOS_BIAS = 20;

const COMPLETION_CASES: { prompt: string; maxTokens: number; stop?: string[]; eos?: boolean }[] = [
  { prompt: 'Once upon a time', maxTokens: 48 },
  { prompt: 'The little dog', maxTokens: 64 },
  { prompt: 'Once upon a time', maxTokens: 100, eos: true }, // ends on EOS
  { prompt: 'Lily wanted to', maxTokens: 64, stop: [' park', '.'] }, // ends on a stop string
  { prompt: 'Ünïcödé ☕ 日本', maxTokens: 32 },
];

test('completions through the openai client equal sequence.complete at temperature 0, streamed and not', async () => {
  const finishes = new Set<string>();
  for (const c of COMPLETION_CASES) {
    const bias = c.eos ? new Map([[2, EOS_BIAS]]) : undefined;
    const want = await libComplete(c.prompt, { maxTokens: c.maxTokens, stop: c.stop, logitBias: bias });
    finishes.add(want.finish);
    const params = {
      model: MODEL_ID,
      prompt: c.prompt,
      max_tokens: c.maxTokens,
      temperature: 0,
      ...(c.stop ? { stop: c.stop } : {}),
      ...(c.eos ? { logit_bias: { '2': EOS_BIAS } } : {}),
    };
    const label = JSON.stringify(c);

    const r = await client.completions.create(params);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, MODEL_ID);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].text, want.text, label);
    assert.equal(r.choices[0].finish_reason, want.finish, label);
    assert.deepEqual(r.usage, { prompt_tokens: want.promptTokens, completion_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens, prompt_tokens_details: { cached_tokens: r.usage!.prompt_tokens_details!.cached_tokens } }, label);
    assert.ok(r.usage!.prompt_tokens_details!.cached_tokens! < want.promptTokens);

    const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const withChoices = chunks.filter((ch) => ch.choices.length > 0);
    for (const ch of withChoices) {
      assert.equal(ch.choices.length, 1);
      assert.equal(ch.choices[0].index, 0);
      text += ch.choices[0].text;
    }
    assert.equal(text, want.text, label);
    // One finish_reason, on the last chunk with a choice; then one chunk with the usage and no choices.
    assert.deepEqual(withChoices.map((ch) => ch.choices[0].finish_reason).filter((f) => f !== null), [want.finish], label);
    assert.equal(withChoices.at(-1)!.choices[0].finish_reason, want.finish);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: want.promptTokens, completion_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens, prompt_tokens_details: { cached_tokens: last.usage!.prompt_tokens_details!.cached_tokens } });
    assert.ok(last.usage!.prompt_tokens_details!.cached_tokens! < want.promptTokens);
    assert.equal(chunks.filter((ch) => ch.usage).length, 1, 'usage comes once, in the last chunk');
    assert.equal(new Set(chunks.map((ch) => ch.id)).size, 1, 'one id for the whole stream');
  }
  assert.deepEqual([...finishes].sort(), ['length', 'stop'], 'the cases cover both finish reasons');
});

const CHAT_CASES: { user: string; system?: string; maxTokens: number; eos?: boolean }[] = [
  { user: 'Tell me a story', maxTokens: 40 },
  { user: 'Once upon a time', maxTokens: 64, system: 'You are a storyteller.' },
  { user: 'Tom and Sue', maxTokens: 64, eos: true }, // ends on EOS
];

test('chat completions through the openai client equal a one-turn chat session at temperature 0, streamed and not', async () => {
  for (const c of CHAT_CASES) {
    const bias = c.eos ? new Map([[2, EOS_BIAS]]) : undefined;
    const want = await libChat(c.user, { maxTokens: c.maxTokens, system: c.system, logitBias: bias });
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      ...(c.system === undefined ? [] : [{ role: 'system' as const, content: c.system }]),
      { role: 'user', content: c.user },
    ];
    const params = { model: MODEL_ID, messages, max_tokens: c.maxTokens, temperature: 0, ...(c.eos ? { logit_bias: { '2': EOS_BIAS } } : {}) };
    const label = JSON.stringify(c);
    if (c.eos) assert.equal(want.finish, 'stop', 'the EOS case ends on EOS');
    else assert.equal(want.finish, 'length');

    const r = await client.chat.completions.create(params);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, want.text, label);
    assert.equal(r.choices[0].finish_reason, want.finish, label);
    assert.deepEqual(r.usage, { prompt_tokens: want.promptTokens, completion_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens, prompt_tokens_details: { cached_tokens: r.usage!.prompt_tokens_details!.cached_tokens } }, label);
    assert.ok(r.usage!.prompt_tokens_details!.cached_tokens! < want.promptTokens);

    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const withChoices = chunks.filter((ch) => ch.choices.length > 0);
    assert.equal(withChoices[0].choices[0].delta.role, 'assistant', 'the first delta carries the role');
    assert.equal(withChoices.slice(1).filter((ch) => ch.choices[0].delta.role !== undefined).length, 0, 'only the first delta has a role');
    assert.equal(withChoices.map((ch) => ch.choices[0].delta.content ?? '').join(''), want.text, label);
    assert.deepEqual(withChoices.map((ch) => ch.choices[0].finish_reason).filter((f) => f !== null), [want.finish]);
    assert.equal(withChoices.at(-1)!.choices[0].finish_reason, want.finish);
    const last = chunks.at(-1)!;
    assert.equal(last.object, 'chat.completion.chunk');
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: want.promptTokens, completion_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens, prompt_tokens_details: { cached_tokens: last.usage!.prompt_tokens_details!.cached_tokens } });
    assert.ok(last.usage!.prompt_tokens_details!.cached_tokens! < want.promptTokens);
  }
});

test('a raw stream is text/event-stream ending in data: [DONE]; without include_usage no chunk lacks a choice or has usage', async () => {
  const want = await libComplete('Once upon a time', { maxTokens: 24 });
  for (const path of ['/v1/completions', '/v1/chat/completions']) {
    const body =
      path === '/v1/completions'
        ? { prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stream: true }
        : { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 24, temperature: 0, stream: true };
    const r = await postSse(main.url, path, body);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(r.rest, '', 'the stream ends on an event boundary');
    const data = r.events.filter((e) => e.data !== undefined).map((e) => e.data!);
    assert.equal(data.at(-1), '[DONE]');
    assert.equal(data.filter((d) => d === '[DONE]').length, 1);
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const ch of chunks) {
      // OpenAI sends a chunk without choices only for stream_options.include_usage: clients index choices[0].
      assert.equal(ch.choices.length, 1, `${path}: ${JSON.stringify(ch)}`);
      assert.equal(ch.usage ?? null, null);
    }
    if (path === '/v1/completions') assert.equal(chunks.map((ch) => ch.choices[0].text).join(''), want.text);
  }
});

test('embeddings through the openai client equal model.embed exactly: float, base64, and the client default', async () => {
  const texts = ['Once upon a time', 'The little dog ran to the park.', 'Ünïcödé ☕'];
  const want = await model.embed(texts);
  const promptTokens = texts.reduce((n, t) => n + model.tokenize(t).length, 0);

  const float = await client.embeddings.create({ model: MODEL_ID, input: texts, encoding_format: 'float' });
  assert.equal(float.object, 'list');
  assert.equal(float.data.length, texts.length);
  float.data.forEach((d, i) => {
    assert.equal(d.index, i);
    assert.ok(Array.isArray(d.embedding));
    assert.deepEqual(Float32Array.from(d.embedding), want[i], `text ${i}`);
    assert.ok(d.embedding.every((x) => Math.fround(x) === x), 'every number is exactly a float32');
  });
  assert.deepEqual(float.usage, { prompt_tokens: promptTokens, total_tokens: promptTokens });

  // Asked for explicitly, base64 comes back as the string the server sent: little-endian float32 bytes.
  const b64 = await client.embeddings.create({ model: MODEL_ID, input: texts, encoding_format: 'base64' });
  b64.data.forEach((d, i) => {
    assert.equal(typeof d.embedding, 'string');
    const bytes = Buffer.from(d.embedding as unknown as string, 'base64');
    assert.equal(bytes.length, want[i].length * 4);
    const v = new Float32Array(bytes.length / 4);
    for (let k = 0; k < v.length; k++) v[k] = bytes.readFloatLE(k * 4);
    assert.deepEqual(v, want[i], `text ${i}`);
  });

  // No encoding_format: the client asks for base64 and decodes it to numbers itself.
  const dflt = await client.embeddings.create({ model: MODEL_ID, input: texts });
  dflt.data.forEach((d, i) => {
    assert.ok(Array.isArray(d.embedding));
    assert.deepEqual(Float32Array.from(d.embedding), want[i], `text ${i}`);
  });

  const one = await client.embeddings.create({ model: MODEL_ID, input: 'Once upon a time', encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  assert.deepEqual(Float32Array.from(one.data[0].embedding), want[0]);
});

test('/v1/models lists the model; retrieving it works and an unknown one is 404', async () => {
  const list = await client.models.list();
  assert.deepEqual(
    list.data.map((m) => ({ id: m.id, object: m.object, owned_by: m.owned_by })),
    [{ id: MODEL_ID, object: 'model', owned_by: 'open-autoglm' }],
  );
  assert.equal(typeof list.data[0].created, 'number');
  const one = await client.models.retrieve(MODEL_ID);
  assert.equal(one.id, MODEL_ID);
  await assert.rejects(client.models.retrieve('gpt-4o'), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError, String(e));
    assert.equal(e.status, 404);
    assert.equal((e.error as { code?: string }).code, 'model_not_found');
    return true;
  });
});

test('n: 3 with a seed: 3 choices, each the library completion with seed + i, reproducible', async () => {
  const prompt = 'Once upon a time';
  const sampling = { temperature: 0.9, topK: 0, topP: 1, minP: 0 };
  const want = [];
  for (let i = 0; i < 3; i++) {
    await using ctx = model.createContext({ sequences: 1 });
    const r = await ctx.createSequence().complete(prompt, { ...sampling, seed: 42 + i, maxTokens: 32 });
    want.push(r);
  }
  assert.ok(new Set(want.map((w) => w.text)).size > 1, 'the seeds give different texts');
  const params = { model: MODEL_ID, prompt, n: 3, seed: 42, temperature: 0.9, max_tokens: 32 };
  const a = await client.completions.create(params);
  const b = await client.completions.create(params);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text), 'the same seed gives the same choices');
  assert.deepEqual(a.choices.map((c) => c.text), want.map((w) => w.text));
  assert.equal(a.usage!.prompt_tokens, model.tokenize(prompt).length);
  assert.equal(a.usage!.completion_tokens, want.reduce((n, w) => n + w.tokens.length, 0));

  // Chat too, streamed: each index gets its own deltas and its own finish_reason.
  const chat = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], n: 3, seed: 7, temperature: 0.9, max_tokens: 16, stream: true });
  const texts = ['', '', ''];
  const finishes: (string | null)[] = [null, null, null];
  for await (const ch of chat) {
    for (const c of ch.choices) {
      texts[c.index] += c.delta.content ?? '';
      if (c.finish_reason) {
        assert.equal(finishes[c.index], null);
        finishes[c.index] = c.finish_reason;
      }
    }
  }
  assert.deepEqual(finishes, ['length', 'length', 'length']);
  const again = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], n: 3, seed: 7, temperature: 0.9, max_tokens: 16 });
  assert.deepEqual(again.choices.map((c) => c.message.content), texts);
});

// ---- bad requests -------------------------------------------------------------------------------------------

const AUTH = { authorization: `Bearer ${API_KEY}` };
let goodText: string | undefined;

/** The next good request after a bad one is answered, correctly. */
async function stillAnswers(): Promise<void> {
  goodText ??= (await libComplete('Once upon a time', { maxTokens: 12 })).text;
  const r = await postJson(strict.url, '/v1/completions', { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }, AUTH);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].text, goodText);
}

async function expectError(
  r: Promise<{ status: number; json: any; text: string; headers: Record<string, unknown> }>,
  status: number,
  want: { type?: string; code?: string; param?: string | null; message?: RegExp },
) {
  const got = await r;
  assert.equal(got.status, status, got.text);
  assert.match(String(got.headers['content-type']), /^application\/json/);
  const e = assertErrorShape(got.json);
  if (want.type !== undefined) assert.equal(e.type, want.type, got.text);
  if (want.code !== undefined) assert.equal(e.code, want.code, got.text);
  if (want.param !== undefined) assert.equal(e.param, want.param, got.text);
  if (want.message) assert.match(e.message, want.message);
  await stillAnswers();
  return { ...got, error: e };
}

const chatBody = (extra: Record<string, unknown>) => ({ model: MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, ...extra });

test('malformed or non-object JSON, an empty body and invalid UTF-8 are 400s', async () => {
  const raw = (body: Buffer | string) => rawRequest(strict.url, { path: '/v1/chat/completions', headers: { ...AUTH, 'content-type': 'application/json' }, body });
  await expectError(raw('{"model": "stories260K", "messages": ['), 400, { type: 'invalid_request_error', code: 'invalid_json', message: /not valid JSON/ });
  await expectError(raw('[1, 2, 3]'), 400, { code: 'invalid_json' });
  await expectError(raw('"a string"'), 400, { code: 'invalid_json' });
  await expectError(raw(''), 400, { code: 'invalid_json' });
  const invalidUtf8 = Buffer.concat([Buffer.from('{"messages": [{"role": "user", "content": "'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}]}')]);
  await expectError(raw(invalidUtf8), 400, { code: 'invalid_encoding', message: /UTF-8/ });
});

test('wrong types are 400s naming the parameter', async () => {
  const post = (path: string, body: unknown) => postJson(strict.url, path, body, AUTH);
  await expectError(post('/v1/chat/completions', { model: MODEL_ID, messages: 'Hi' }), 400, { param: 'messages', code: 'invalid_type' });
  await expectError(post('/v1/chat/completions', { model: MODEL_ID }), 400, { param: 'messages' });
  await expectError(post('/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'wizard', content: 'x' }] }), 400, { param: 'messages[0].role' });
  await expectError(post('/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: 5 }] }), 400, { param: 'messages[0].content' });
  await expectError(post('/v1/chat/completions', chatBody({ temperature: '0.5' })), 400, { param: 'temperature', code: 'invalid_type' });
  await expectError(post('/v1/chat/completions', chatBody({ stream: 'yes' })), 400, { param: 'stream' });
  await expectError(post('/v1/chat/completions', chatBody({ model: 42 })), 400, { param: 'model' });
  await expectError(post('/v1/completions', { model: MODEL_ID, prompt: 42 }), 400, { param: 'prompt' });
  await expectError(post('/v1/completions', { model: MODEL_ID, prompt: [1, 2, 99999] }), 400, { param: 'prompt[2]' });
  await expectError(post('/v1/embeddings', { model: MODEL_ID, input: { text: 'x' } }), 400, { param: 'input' });
  await expectError(post('/tokenize', { content: 5 }), 400, { param: 'content' });
});

test('an unknown model is 404 model_not_found (raw and through the openai client)', async () => {
  await expectError(postJson(strict.url, '/v1/chat/completions', chatBody({ model: 'gpt-4o' }), AUTH), 404, {
    type: 'invalid_request_error',
    code: 'model_not_found',
    param: 'model',
    message: /gpt-4o/,
  });
  await expectError(postJson(strict.url, '/v1/completions', { model: 'nope', prompt: 'x' }, AUTH), 404, { code: 'model_not_found' });
  await expectError(postJson(strict.url, '/v1/embeddings', { model: 'nope', input: 'x' }, AUTH), 404, { code: 'model_not_found' });
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError, String(e));
    assert.equal((e.error as { code?: string }).code, 'model_not_found');
    return true;
  });
});

test('max_tokens, n and temperature out of range are 400s naming the parameter', async () => {
  const post = (body: unknown) => postJson(strict.url, '/v1/chat/completions', body, AUTH);
  for (const v of [-1, 0, 1.5, '8']) await expectError(post(chatBody({ max_tokens: v })), 400, { param: 'max_tokens', code: 'invalid_type' });
  await expectError(post(chatBody({ max_completion_tokens: -5 })), 400, { param: 'max_completion_tokens' });
  // The strict server runs 2 sequences: n from 1 to 2.
  for (const v of [0, 3, 1.5, -1]) await expectError(post(chatBody({ n: v })), 400, { param: 'n' });
  await expectError(postJson(strict.url, '/v1/completions', { prompt: ['a', 'b', 'c'], max_tokens: 4 }, AUTH), 400, { param: 'n' });
  for (const v of [-0.1, 2.01, 1e9]) await expectError(post(chatBody({ temperature: v })), 400, { param: 'temperature' });
  await expectError(post(chatBody({ top_p: 1.5 })), 400, { param: 'top_p' });
});

test('a prompt longer than the context is a 400 giving both token counts', async () => {
  const long = 'Once upon a time there was a little girl named Lily who loved to play in the park with her dog. '.repeat(4);
  const promptTokens = model.tokenize(long).length;
  assert.ok(promptTokens > 64, `${promptTokens} tokens`);
  const r = await expectError(postJson(strict.url, '/v1/completions', { prompt: long, max_tokens: 8 }, AUTH), 400, {
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    param: 'prompt',
  });
  assert.match(r.error.message, new RegExp(`\\b${promptTokens} tokens\\b`), r.error.message);
  assert.match(r.error.message, /\b64 tokens\b/, r.error.message);

  const chatTokens = model.chatTemplate.tokenize([{ role: 'user', content: long }], { addGenerationPrompt: true }).length;
  const c = await expectError(postJson(strict.url, '/v1/chat/completions', { messages: [{ role: 'user', content: long }] }, AUTH), 400, {
    code: 'context_length_exceeded',
    param: 'messages',
  });
  assert.match(c.error.message, new RegExp(`\\b${chatTokens} tokens\\b`), c.error.message);
  assert.match(c.error.message, /\b64 tokens\b/);

  // The openai client surfaces it as a BadRequestError.
  const strictClient = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
  await assert.rejects(strictClient.completions.create({ model: MODEL_ID, prompt: long, max_tokens: 8 }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal((e.error as { code?: string }).code, 'context_length_exceeded');
    return true;
  });
});

test('an oversized body is 413, whether its length is declared or it comes chunked', async () => {
  const big = JSON.stringify({ model: MODEL_ID, prompt: 'x'.repeat(10_000), max_tokens: 4 });
  const declared = await expectError(
    rawRequest(strict.url, { path: '/v1/completions', headers: { ...AUTH, 'content-type': 'application/json' }, body: big }),
    413,
    { code: 'request_too_large', message: /4096/ },
  );
  // The rest of the body is not read: the connection closes after the answer.
  assert.equal(declared.headers.connection, 'close');
  // No content-length: the limit is found while reading, and the answer still gets out before the connection closes.
  const chunks = Array.from({ length: 10 }, (_, i) => Buffer.from(i === 0 ? `{"prompt": "${'x'.repeat(1000)}` : 'x'.repeat(1000)));
  const chunked = await expectError(
    rawRequest(strict.url, { path: '/v1/completions', headers: { ...AUTH, 'content-type': 'application/json' }, chunks }),
    413,
    { code: 'request_too_large', message: /4096/ },
  );
  assert.equal(chunked.headers.connection, 'close');
  // Under the limit in chunks is fine.
  const small = [Buffer.from('{"prompt": "Once upon'), Buffer.from(' a time", "max_tokens": 12, "temperature": 0}')];
  const ok = await rawRequest(strict.url, { path: '/v1/completions', headers: { ...AUTH, 'content-type': 'application/json' }, chunks: small });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].text, (await libComplete('Once upon a time', { maxTokens: 12 })).text);
});

test('a missing or wrong API key is 401 (but /health needs none); wrong methods and paths are 405 and 404', async () => {
  const body = chatBody({});
  const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: API_KEY }, { authorization: `Basic ${API_KEY}` }];
  for (const headers of attempts) {
    const r = await expectError(postJson(strict.url, '/v1/chat/completions', body, headers), 401, { type: 'authentication_error', code: 'invalid_api_key' });
    assert.equal(r.headers['www-authenticate'], 'Bearer');
  }
  await expectError(
    rawRequest(strict.url, { method: 'GET', path: '/v1/models' }).then((r) => ({ ...r, headers: r.headers as Record<string, unknown> })),
    401,
    { code: 'invalid_api_key' },
  );
  const health = await fetch(`${strict.url}/health`);
  assert.equal(health.status, 200);
  const keyed = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(keyed.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  const good = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
  assert.equal((await good.models.list()).data[0].id, MODEL_ID);

  const get = await rawRequest(strict.url, { method: 'GET', path: '/v1/completions', headers: AUTH });
  assert.equal(get.status, 405);
  assertErrorShape(get.json);
  const missing = await rawRequest(strict.url, { method: 'GET', path: '/v2/nothing', headers: AUTH });
  assert.equal(missing.status, 404);
  assertErrorShape(missing.json);
  // A model id that is not valid percent-encoding is an unknown model, not a server error.
  const badId = await rawRequest(strict.url, { method: 'GET', path: '/v1/models/%E0%A4%A', headers: AUTH });
  assert.equal(badId.status, 404, badId.text);
  assert.equal(assertErrorShape(badId.json).code, 'model_not_found');
  await stillAnswers();
});

// ---- health, metrics, tokenize ------------------------------------------------------------------------------

test('/health is 503 while the model loads and 200 once it has; requests meanwhile get 503 with Retry-After', async () => {
  let resolve!: (m: Model) => void;
  const s = await listen(new Promise<Model>((r) => (resolve = r)), { parallel: 1 });
  try {
    const loading = await fetch(`${s.url}/health`);
    assert.equal(loading.status, 503);
    assert.deepEqual(await loading.json(), { status: 'loading' });
    assert.equal(loading.headers.get('retry-after'), '1');
    const early = await postJson(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 4 });
    assert.equal(early.status, 503);
    assert.equal(assertErrorShape(early.json).code, 'loading');
    assert.equal(early.headers['retry-after'], '1');
    resolve(model);
    await s.handler.ready;
    const ok = await fetch(`${s.url}/health`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { status: 'ok' });
    const r = await postJson(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, (await libComplete('Once upon a time', { maxTokens: 12 })).text);
  } finally {
    await s.close();
  }
  // A model that fails to load: /health says so.
  const failed = await listen(Promise.reject(new Error('no such file')), {});
  try {
    await failed.handler.ready.catch(() => {});
    const h = await fetch(`${failed.url}/health`);
    assert.equal(h.status, 503);
    assert.deepEqual(await h.json(), { status: 'error' });
  } finally {
    await failed.close();
  }
});

test('/metrics counts requests by endpoint and status and has the TTFT and inter-token latency histograms', async () => {
  const s = await listen(model, { parallel: 2 });
  try {
    const a = await postJson(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 20, temperature: 0 });
    const b = await postSse(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const bUsage = JSON.parse(b.events.filter((e) => e.data && e.data !== '[DONE]').at(-1)!.data!).usage;
    const bad = await postJson(s.url, '/v1/completions', { prompt: 'x', max_tokens: -1 });
    const unknown = await postJson(s.url, '/v1/completions', { model: 'nope', prompt: 'x' });
    await fetch(`${s.url}/v1/models`);
    // Unknown paths count under one label, however many there are.
    for (const path of ['/wp-admin', '/v2/x', '/.env']) assert.equal((await fetch(`${s.url}${path}`)).status, 404);
    assert.deepEqual([a.status, b.status, bad.status, unknown.status], [200, 200, 400, 404]);
    const text = await scrape(s.url);
    const count = (endpoint: string, status: string) => metricValue(text, 'aglm_requests_total', { endpoint, status });
    assert.equal(count('/v1/completions', '200'), 1);
    assert.equal(count('/v1/chat/completions', '200'), 1);
    assert.equal(count('/v1/completions', '400'), 1);
    assert.equal(count('/v1/completions', '404'), 1);
    assert.equal(count('/v1/models', '200'), 1);
    assert.equal(count('other', '404'), 3);
    assert.doesNotMatch(text, /wp-admin|\.env|\/v2\/x/);
    assert.match(text, /# TYPE aglm_requests_total counter/);

    const generated = a.json.usage.completion_tokens + bUsage.completion_tokens;
    assert.equal(metricValue(text, 'aglm_generated_tokens_total'), generated);
    assert.equal(metricValue(text, 'aglm_prompt_tokens_total'), a.json.usage.prompt_tokens + bUsage.prompt_tokens);
    for (const [name, n] of [
      ['aglm_time_to_first_token_seconds', 2], // once per request that generated a token
      ['aglm_inter_token_latency_seconds', generated - 2], // between consecutive tokens of each choice
    ] as const) {
      assert.match(text, new RegExp(`# TYPE ${name} histogram`));
      assert.equal(metricValue(text, `${name}_count`), n, name);
      assert.equal(metricValue(text, `${name}_bucket`, { le: '+Inf' }), n, name);
      const sum = metricValue(text, `${name}_sum`)!;
      assert.ok(sum > 0 && sum < 60, `${name}_sum ${sum}`);
      // Cumulative buckets: non-decreasing, ending at the count.
      const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => [m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
      assert.ok(buckets.length >= 10, `${name}: ${buckets.length} buckets`);
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(buckets[i][0] > buckets[i - 1][0] && buckets[i][1] >= buckets[i - 1][1], `${name} buckets ${JSON.stringify(buckets)}`);
      }
    }
    assert.equal(metricValue(text, 'aglm_active_sequences'), 0);
    assert.equal(metricValue(text, 'aglm_queue_depth'), 0);
    // What holds cells now is the prompt cache (finished requests kept for reuse): freed, nothing is left.
    assert.ok(metricValue(text, 'aglm_kv_cells_used')! <= metricValue(text, 'aglm_prompt_cache_tokens')!);
    s.handler.engine!.clearPromptCache();
    assert.equal(metricValue(s.handler.engine!.metrics.render(), 'aglm_kv_cells_used'), 0);
    assert.equal(metricValue(text, 'aglm_kv_cells_total'), s.handler.engine!.contextSize);
  } finally {
    await s.close();
  }
});

test('/tokenize and /detokenize round-trip, with add_special and with_pieces', async () => {
  for (const content of ['Once upon a time', ' leading space, and Ünïcödé ☕ 日本', 'line one\nline two\t<s> not special']) {
    const plain = await postJson(main.url, '/tokenize', { content });
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.json.tokens, Array.from(model.tokenize(content, { addSpecial: false })));
    const special = await postJson(main.url, '/tokenize', { content, add_special: true });
    assert.deepEqual(special.json.tokens, Array.from(model.tokenize(content)));
    assert.equal(special.json.tokens[0], 1, 'BOS first');
    assert.deepEqual(special.json.tokens.slice(1), plain.json.tokens);

    const pieces = await postJson(main.url, '/v1/tokenize', { content, with_pieces: true });
    assert.deepEqual(pieces.json.tokens.map((t: { id: number }) => t.id), plain.json.tokens);
    for (const t of pieces.json.tokens) assert.equal(t.piece, model.detokenize([t.id], { special: true }));

    const back = await postJson(main.url, '/detokenize', { tokens: plain.json.tokens });
    assert.equal(back.status, 200);
    assert.deepEqual(back.json, { content });
    const backSpecial = await postJson(main.url, '/v1/detokenize', { tokens: special.json.tokens });
    assert.equal(backSpecial.json.content, content, 'BOS detokenizes to nothing');
  }
  const parsed = await postJson(main.url, '/tokenize', { content: '<s>', parse_special: true });
  assert.deepEqual(parsed.json.tokens, [1]);
  const bad = await postJson(main.url, '/detokenize', { tokens: [1, 2, 100000] });
  assert.equal(bad.status, 400);
  assert.equal(assertErrorShape(bad.json).param, 'tokens[2]');
});
