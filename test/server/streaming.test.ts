// Long requests over HTTP: a client that disconnects in the middle of a 2,000-token prompt frees its sequence within
// 100 ms (watched through /metrics), streamed or not; SSE keep-alive comments arrive while a long prompt is processed;
// an error after a stream began (the shared KV pool filling up) arrives as a `data: {"error": ...}` event.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadModel, type Model } from '../../lib/index.js';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { tempDir } from '../helpers/fixtures.js';
import { assertErrorShape, listen, metricValue, postJson, scrape, SseParser, type Listening, type SseEvent } from '../helpers/server.js';

let slow: Model;
let server: Listening;
/** 2,000 tokens: over a second of prompt processing for the 512-dim model below. */
const LONG_PROMPT = Array.from({ length: 2000 }, (_, i) => 3 + ((i * 7919) % 500));

before(async () => {
  const dir = tempDir({ after: (fn) => after(fn) });
  const path = join(dir, 'slow-512.gguf');
  await writeRandomLlamaModel(path, {
    embeddingLength: 512, blockCount: 6, headCount: 8, headCountKv: 4, feedForwardLength: 1376, vocabSize: 512, contextLength: 2048,
  });
  slow = await loadModel(path);
  server = await listen(slow, { parallel: 2, contextSize: 2048, keepAliveMs: 50 });
});

after(async () => {
  await server?.close();
  slow?.dispose();
});

interface Gauges {
  active: number;
  cells: number;
  /** Tokens the prompt cache's sequences hold (finished requests kept for reuse). */
  cached: number;
  generated: number;
}

async function gauges(url: string): Promise<Gauges> {
  const text = await scrape(url);
  return {
    active: metricValue(text, 'aglm_active_sequences')!,
    cells: metricValue(text, 'aglm_kv_cells_used')!,
    cached: metricValue(text, 'aglm_prompt_cache_tokens')!,
    generated: metricValue(text, 'aglm_generated_tokens_total')!,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A POST whose socket the test destroys; what arrived meanwhile is kept. */
function startRequest(url: string, body: unknown, path = '/v1/completions'): { req: ClientRequest; events: SseParser; status: Promise<number> } {
  const events = new SseParser();
  let setStatus!: (s: number) => void;
  const status = new Promise<number>((r) => (setStatus = r));
  const req = request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
    setStatus(res.statusCode ?? 0);
    res.on('data', (c: Buffer) => events.push(c));
    res.on('error', () => {});
  });
  req.on('error', () => {}); // the test destroys it
  req.end(JSON.stringify(body));
  return { req, events, status };
}

/**
 * Starts a request with the 2,000-token prompt, waits until its sequence is in the middle of the prompt (1 active
 * sequence, some but not all of the prompt's cells used, nothing generated), destroys the client's socket, and returns
 * how long /metrics took to show no active sequence, measured from the destroy call.
 */
async function disconnectDuringPrompt(stream: boolean): Promise<{ latency: number; lowerBound: number; cellsAtDestroy: number; polls: number }> {
  const before = await gauges(server.url);
  assert.equal(before.active, 0);
  const { req } = startRequest(server.url, { prompt: LONG_PROMPT, max_tokens: 16, temperature: 0, stream });
  let g: Gauges;
  const waitStart = performance.now();
  for (;;) {
    g = await gauges(server.url);
    if (g.active === 1 && g.cells > 0) break;
    assert.ok(performance.now() - waitStart < 20_000, `the prompt did not start: ${JSON.stringify(g)}`);
    await sleep(2);
  }
  assert.ok(g.cells < LONG_PROMPT.length, `the prompt is still being processed (${g.cells} cells)`);
  assert.equal(g.generated, before.generated, 'nothing generated yet');
  const destroyedAt = performance.now();
  req.destroy();
  let polls = 0;
  for (;;) {
    const sent = performance.now();
    const now = await gauges(server.url);
    const got = performance.now();
    polls++;
    if (now.active === 0) {
      assert.ok(now.cells <= now.cached, `the sequence’s cells were freed (${now.cells} held, ${now.cached} by the prompt cache)`);
      assert.equal(now.generated, before.generated, 'it never got to generate');
      return { latency: got - destroyedAt, lowerBound: sent - destroyedAt, cellsAtDestroy: g.cells, polls };
    }
    assert.ok(got - destroyedAt < 5000, `still ${now.active} active sequence(s) 5 s after the disconnect`);
    await sleep(2);
  }
}

for (const stream of [true, false]) {
  test(`a ${stream ? 'streaming' : 'non-streaming'} client that disconnects during a 2,000-token prompt frees its sequence within 100 ms`, async (t) => {
    const cancelledBefore = metricValue(await scrape(server.url), 'aglm_requests_total', { endpoint: '/v1/completions', status: '499' }) ?? 0;
    const r = await disconnectDuringPrompt(stream);
    t.diagnostic(
      `freed ${r.latency.toFixed(1)} ms after the disconnect (the poll that saw it was sent at ${r.lowerBound.toFixed(1)} ms; ` +
        `${r.polls} polls; ${r.cellsAtDestroy} of ${LONG_PROMPT.length} prompt cells done at the disconnect)`,
    );
    assert.ok(r.latency < 100, `the sequence was freed ${r.latency.toFixed(1)} ms after the disconnect`);
    // Counted as cancelled (499), and the server answers the next request.
    const cancelled = metricValue(await scrape(server.url), 'aglm_requests_total', { endpoint: '/v1/completions', status: '499' });
    assert.equal(cancelled, cancelledBefore + 1);
    const next = await postJson(server.url, '/v1/completions', { prompt: LONG_PROMPT.slice(0, 8), max_tokens: 4, temperature: 0 });
    assert.equal(next.status, 200, next.text);
    assert.equal(next.json.usage.completion_tokens + next.json.usage.prompt_tokens, 12);
  });
}

test('a client that disconnects while queued leaves the queue at once: its place goes to the next one', async () => {
  const s = await listen(slow, { parallel: 1, maxQueue: 1 });
  try {
    const depth = async () => metricValue(await scrape(s.url), 'aglm_queue_depth')!;
    const running = startRequest(s.url, { prompt: LONG_PROMPT, max_tokens: 1 });
    while ((await gauges(s.url)).active !== 1) await sleep(2);
    const queued = startRequest(s.url, { prompt: LONG_PROMPT.slice(0, 10), max_tokens: 1 });
    while ((await depth()) !== 1) await sleep(2);
    const refused = await postJson(s.url, '/v1/completions', { prompt: 'x', max_tokens: 1 });
    assert.equal(refused.status, 503);
    assert.equal(assertErrorShape(refused.json).code, 'overloaded');
    queued.req.destroy();
    const t0 = performance.now();
    while ((await depth()) !== 0) {
      assert.ok(performance.now() - t0 < 1000, 'the queue still holds the request that went away');
      await sleep(2);
    }
    const next = startRequest(s.url, { prompt: LONG_PROMPT.slice(0, 10), max_tokens: 1 });
    while ((await depth()) !== 1) await sleep(2);
    const metrics = await scrape(s.url);
    assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/completions', status: '499' }), 1);
    assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/completions', status: '503' }), 1);
    running.req.destroy();
    assert.equal(await next.status, 200, 'the request queued after it is served');
  } finally {
    await s.close();
  }
});

test('SSE keep-alive comments arrive while a long prompt is processed, then the tokens and [DONE]', async () => {
  const started = performance.now();
  const { events, status } = startRequest(server.url, { prompt: LONG_PROMPT, max_tokens: 3, temperature: 0, stream: true, stream_options: { include_usage: true } });
  assert.equal(await status, 200);
  const deadline = performance.now() + 30_000;
  while (!events.events.some((e) => e.data === '[DONE]')) {
    assert.ok(performance.now() < deadline, 'the stream did not end');
    await sleep(10);
  }
  const firstData = events.events.findIndex((e) => e.data !== undefined);
  const comments = events.events.slice(0, firstData);
  const promptMs = events.events[firstData].at - started;
  assert.ok(comments.length >= 5, `${comments.length} keep-alive comments in the ${promptMs.toFixed(0)} ms before the first token`);
  assert.ok(comments.every((e: SseEvent) => e.comment === 'keep-alive'));
  // They come steadily (every 50 ms asked; a loaded machine may delay some), not in a burst at the end.
  const gaps = comments.slice(1).map((e, i) => e.at - comments[i].at);
  assert.ok(comments[0].at - started < 1000, `the first keep-alive came after ${(comments[0].at - started).toFixed(0)} ms`);
  assert.ok(Math.max(...gaps) < 1000, `gaps between keep-alives: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);
  const chunks = events.events.filter((e) => e.data !== undefined && e.data !== '[DONE]').map((e) => JSON.parse(e.data!));
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 2000, completion_tokens: 3, total_tokens: 2003, prompt_tokens_details: { cached_tokens: 0 } });
  assert.equal(events.rest, '');
});

test('an error after the stream began (the shared KV pool is full) arrives as a data: {"error": ...} event', async (t) => {
  await using model = await loadModel(); // stories260K: fast enough to fill a 256-cell pool in a moment
  const s = await listen(model, { parallel: 2, contextSize: 256, keepAliveMs: 60_000 });
  try {
    // Chats without max_tokens (they reserve only their prompt's cells and one more, so both are admitted) and EOS
    // banned: both generate until the pool is full. The second starts once the first is streaming.
    const body = { messages: [{ role: 'user', content: 'Once upon a time' }], temperature: 0, stream: true, logit_bias: { '2': -100 } };
    const a = startRequest(s.url, body, '/v1/chat/completions');
    while (!a.events.events.some((e) => e.data !== undefined)) await sleep(1);
    const b = startRequest(s.url, body, '/v1/chat/completions');
    assert.deepEqual(await Promise.all([a.status, b.status]), [200, 200]);
    const ended = (r: { events: SseParser }) => {
      const last = r.events.events.at(-1)?.data;
      return last === '[DONE]' || (last !== undefined && last.startsWith('{"error"'));
    };
    const deadline = performance.now() + 30_000;
    while (!ended(a) || !ended(b)) {
      assert.ok(performance.now() < deadline, 'the streams did not end');
      await sleep(5);
    }
    const results = [a, b].map((r) => r.events.events.filter((e) => e.data !== undefined).map((e) => e.data!));
    const failed = results.filter((d) => d.at(-1) !== '[DONE]');
    const finished = results.filter((d) => d.at(-1) === '[DONE]');
    // When the pool fills and neither can go on, the one holding the most cells (a, which started first) fails and
    // frees them; b then has room to go on.
    assert.equal(failed.length, 1, 'exactly one stream ran out of cells');
    assert.equal(results[0].at(-1) === '[DONE]', false, 'the longer sequence (a) is the one that failed');
    for (const f of failed) {
      // Tokens, then the error event in OpenAI's shape, then the end of the response (no [DONE]).
      assert.ok(f.length > 2, 'it had streamed tokens before the pool filled');
      assert.ok(f.slice(0, -1).every((d) => JSON.parse(d).choices.length === 1));
      const error = assertErrorShape(JSON.parse(f.at(-1)!));
      assert.equal(error.code, 'kv_cache_full');
      assert.equal(error.type, 'overloaded_error');
      assert.match(error.message, /256/);
    }
    for (const d of finished) {
      // A survivor has the pool to itself and runs until its sequence holds the whole context: finish_reason 'length'.
      const chunks = d.slice(0, -1).map((x) => JSON.parse(x));
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
    }

    const metrics = await scrape(s.url);
    assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/chat/completions', status: '503' }), failed.length);
    assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/chat/completions', status: '200' }) ?? 0, finished.length);
    assert.ok(metricValue(metrics, 'aglm_kv_cells_used')! <= metricValue(metrics, 'aglm_prompt_cache_tokens')!);
    assert.equal(metricValue(metrics, 'aglm_active_sequences'), 0);
    // The official client raises the error event as an APIError (the same race, through openai streams).
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const params = { model: 'stories260K', messages: [{ role: 'user' as const, content: 'Once upon a time' }], temperature: 0, stream: true as const, logit_bias: { '2': -100 } };
    let firstChunk!: () => void;
    const aStarted = new Promise<void>((r) => (firstChunk = r));
    const consume = async (stream: AsyncIterable<unknown>, onChunk?: () => void) => {
      try {
        for await (const _ of stream) onChunk?.();
        return 'done';
      } catch (e) {
        return e;
      }
    };
    const ca = consume(await client.chat.completions.create(params), firstChunk);
    await aStarted;
    const cb = consume(await client.chat.completions.create(params));
    const outcomes = await Promise.all([ca, cb]);
    const errors = outcomes.filter((o) => o !== 'done');
    assert.equal(errors.length, 1);
    assert.notEqual(outcomes[0], 'done', 'the longer sequence failed');
    for (const e of errors) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal((e.error as { code?: string }).code, 'kv_cache_full');
    }
    // The server answers the next request.
    const want = await model.complete('Once upon a time', { maxTokens: 16, temperature: 0 });
    const next = await postJson(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
    assert.equal(next.status, 200);
    assert.equal(next.json.choices[0].text, want.text);
  } finally {
    await s.close();
  }
});

test('requests that state max_tokens reserve their cells at admission: they wait for room instead of running out of it', async () => {
  await using model = await loadModel();
  const s = await listen(model, { parallel: 2, contextSize: 256, keepAliveMs: 60_000 });
  try {
    // Each needs its prompt and 150 cells: the two do not fit together in 256, so the second waits for the first.
    const body = { prompt: 'Once upon a time', max_tokens: 150, temperature: 0, logit_bias: { '2': -100 } };
    const want = await model.complete('Once upon a time', { maxTokens: 150, temperature: 0, logitBias: { 2: -100 } });
    const [a, b] = await Promise.all([postJson(s.url, '/v1/completions', body), postJson(s.url, '/v1/completions', body)]);
    for (const r of [a, b]) {
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.choices[0].text, want.text);
      assert.equal(r.json.usage.completion_tokens, 150);
    }
    const metrics = await scrape(s.url);
    assert.equal(metricValue(metrics, 'aglm_kv_cells_reserved'), 0);
  } finally {
    await s.close();
  }
});
