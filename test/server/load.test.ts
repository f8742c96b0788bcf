// The server under load: 32 streaming clients (the official openai client) against --parallel 8 for 60 seconds, each
// sending requests in a loop; no request fails, every text equals the library's single-request output at temperature
// 0, and the server process's resident memory stays flat after warm-up. And the queue-full path: with parallel 1 and
// maxQueue 1 a burst gets 503s with Retry-After in OpenAI's error shape, and the server keeps answering.
// AGLM_LOAD_SECONDS shortens the load run for a quick local check (the acceptance figure is the default, 60).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadModel, type Model } from '../../lib/index.js';
import { repoRoot } from '../helpers/fixtures.js';
import type { MemorySample } from '../helpers/server-process.js';
import { assertErrorShape, listen, metricValue, postJson, scrape } from '../helpers/server.js';

const LOAD_SECONDS = Number(process.env.AGLM_LOAD_SECONDS ?? 60);
const CLIENTS = 32;
const PARALLEL = 8;
/**
 * Resident memory may grow this much between the end of warm-up and any sample of the last third of the run. The
 * run answers thousands of requests after warm-up (the test reports how many): a leak of a few KB per request (a
 * response, a sequence's buffers, listeners on a signal) adds up to tens of MB, and a KV sequence or context left
 * behind costs MBs each. What stays is the V8 heap breathing between collections (young generation up to 16 MB, old
 * generation growth steps) and malloc arenas: 2 to 17 MB measured here, while a 4 KB-per-request leak put into the
 * handler on purpose measured 51 MB (and its median 38 MB up).
 */
const RSS_BOUND_MB = 32;
/**
 * The median of the last third's samples may exceed the median of the 10 s after warm-up by this much: medians drop
 * the collector's sawtooth, and the two windows are ~35 s (~4,000 requests at the measured rate) apart, so a leak of
 * ~4 KB per request shows.
 */
const RSS_MEDIAN_BOUND_MB = 16;

interface Case {
  kind: 'completion' | 'chat';
  prompt: string;
  maxTokens: number;
  expected: string;
  completionTokens: number;
}

const PROMPTS = [
  'Once upon a time',
  'The little dog',
  'Lily wanted to',
  'One day, a big bear',
  'Tom and Sue',
  'The sun was',
  'In the garden there was',
  'Ben had a red ball',
  'The cat sat on the mat and',
  'Mom said',
  'Ünïcödé ☕ and a tree',
  'She looked at the sky',
];

async function expectedOutputs(model: Model): Promise<Case[]> {
  const cases: Case[] = [];
  await using ctx = model.createContext({ sequences: 1 });
  for (let i = 0; i < PROMPTS.length; i++) {
    const prompt = PROMPTS[i];
    const maxTokens = 32 + ((i * 11) % 33); // 32..64
    if (i % 3 === 2) {
      await using chat = model.createChatSession();
      const text = await chat.prompt(prompt, { maxTokens, temperature: 0 });
      cases.push({ kind: 'chat', prompt, maxTokens, expected: text, completionTokens: chat.lastTurnStats!.generatedTokens });
    } else {
      const seq = ctx.createSequence();
      const r = await seq.complete(prompt, { maxTokens, temperature: 0 });
      seq.dispose();
      cases.push({ kind: 'completion', prompt, maxTokens, expected: r.text, completionTokens: r.tokens.length });
    }
  }
  return cases;
}

/** The server in a child process, so that its resident memory is its own. */
async function startServerProcess(options: object) {
  const child = fork(join(repoRoot, 'test', 'helpers', 'server-process.ts'), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // A native crash in the server writes its signal and backtrace to stderr (native/napi/crash-trace.cpp).
    env: { ...process.env, OPEN_AUTOGLM_CRASH_TRACE: '1' },
  });
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal ? `killed by ${signal}` : `exit code ${code}`;
  });
  /** The next message of `type`; fails when the process has ended or does not answer within `ms`. */
  const next = (type: string, ms = 120_000) =>
    new Promise<any>((resolve, reject) => {
      if (exited) return reject(new Error(`the server process ended (${exited}) before '${type}'`));
      const timer = setTimeout(() => finish(new Error(`the server process sent no '${type}' within ${ms} ms`)), ms);
      const finish = (e: Error | undefined, m?: unknown) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (e) reject(e);
        else resolve(m);
      };
      const onMessage = (m: { type: string }) => {
        if (m.type === type) finish(undefined, m);
      };
      const onExit = (code: number | null, signal: string | null) =>
        finish(new Error(`the server process ended (${signal ? `killed by ${signal}` : `exit code ${code}`}) before '${type}'`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const { port } = await next('listening');
  return {
    url: `http://127.0.0.1:${port}`,
    start: () => child.send({ type: 'start' }),
    /** How the process ended, if it has. */
    ended: () => exited,
    samples: async (): Promise<MemorySample[]> => {
      const got = next('samples', 30_000);
      if (!exited) child.send({ type: 'samples' });
      return (await got).samples;
    },
    close: async () => {
      if (exited || !child.connected) return;
      const ends = new Promise((r) => child.once('exit', r));
      const closed = next('closed').catch(() => {});
      child.send({ type: 'close' });
      // (unref'd: a pending timer would keep this process alive after the tests)
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
      await Promise.race([ends, new Promise((r) => setTimeout(r, 5_000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

const mb = (bytes: number) => bytes / (1 << 20);

test(`${CLIENTS} streaming clients against parallel ${PARALLEL} for ${LOAD_SECONDS} s: no failures, exact texts, flat memory`, { timeout: (LOAD_SECONDS + 120) * 1000 }, async (t) => {
  await using model = await loadModel();
  const cases = await expectedOutputs(model);
  const server = await startServerProcess({ server: { parallel: PARALLEL } });
  t.after(() => server.close());

  let ok = 0;
  const failures: string[] = [];
  const mismatches: string[] = [];
  const perCase = new Map<number, number>();
  const durationMs = LOAD_SECONDS * 1000;
  server.start();
  const start = performance.now();
  const deadline = start + durationMs;

  const client = async (k: number) => {
    // (A request takes well under a second; one that hangs fails after 30 s and is reported with the others.)
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'load', maxRetries: 0, timeout: 30_000 });
    for (let i = k; performance.now() < deadline; i++) {
      const index = i % cases.length;
      const c = cases[index];
      const common = { model: 'stories260K', max_tokens: c.maxTokens, temperature: 0, stream: true as const, stream_options: { include_usage: true } };
      try {
        let text = '';
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | undefined | null;
        if (c.kind === 'completion') {
          const stream = await openai.completions.create({ ...common, prompt: c.prompt });
          for await (const ch of stream) {
            for (const choice of ch.choices) {
              text += choice.text;
              finish = choice.finish_reason ?? finish;
            }
            usage = ch.usage ?? usage;
          }
        } else {
          const stream = await openai.chat.completions.create({ ...common, messages: [{ role: 'user', content: c.prompt }] });
          for await (const ch of stream) {
            for (const choice of ch.choices) {
              text += choice.delta.content ?? '';
              finish = choice.finish_reason ?? finish;
            }
            usage = ch.usage ?? usage;
          }
        }
        if (text !== c.expected || finish !== 'length' || usage?.completion_tokens !== c.completionTokens) {
          mismatches.push(`${c.kind} ${JSON.stringify(c.prompt)}: got ${JSON.stringify(text)} (${finish}, ${usage?.completion_tokens} tokens), want ${JSON.stringify(c.expected)}`);
        }
        ok++;
        perCase.set(index, (perCase.get(index) ?? 0) + 1);
      } catch (e) {
        failures.push(`${c.kind} ${JSON.stringify(c.prompt)}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
  const elapsed = (performance.now() - start) / 1000;
  assert.equal(server.ended(), undefined, `the server process ended during the run; failures: ${failures.slice(0, 3).join('; ')}`);
  const samples = await server.samples();
  const metrics = await scrape(server.url);

  // Memory: the sample after 10 s of warm-up against those of the last 20 s (shorter runs: the first sixth and last
  // third, reported but not asserted, as the heap is still growing to its working size for the first ~8 s).
  const warmup = Math.min(10, LOAD_SECONDS / 6);
  const tailSeconds = Math.min(20, LOAD_SECONDS / 3);
  const base = samples.find((s) => s.t >= warmup)!;
  const tail = samples.filter((s) => s.t >= LOAD_SECONDS - tailSeconds && s.t <= LOAD_SECONDS);
  const tailMax = Math.max(...tail.map((s) => s.rss));
  const tailMin = Math.min(...tail.map((s) => s.rss));
  const afterWarmup = samples.filter((s) => s.t >= warmup && s.t <= LOAD_SECONDS);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const earlyMedian = median(samples.filter((s) => s.t >= warmup && s.t < 2 * warmup).map((s) => s.rss));
  const tailMedian = median(tail.map((s) => s.rss));
  t.diagnostic(
    `${ok} requests in ${elapsed.toFixed(1)} s (${(ok / elapsed).toFixed(1)}/s), ${failures.length} failed, ${mismatches.length} mismatched; ` +
      `${metricValue(metrics, 'aglm_generated_tokens_total')} tokens generated`,
  );
  t.diagnostic(
    `RSS at ${base.t.toFixed(0)} s ${mb(base.rss).toFixed(1)} MB; last ${tailSeconds.toFixed(0)} s ${mb(tailMin).toFixed(1)}..${mb(tailMax).toFixed(1)} MB ` +
      `(max - base ${mb(tailMax - base.rss).toFixed(1)} MB; median ${mb(tailMedian).toFixed(1)} MB vs ${mb(earlyMedian).toFixed(1)} MB ` +
      `${warmup.toFixed(0)}-${(2 * warmup).toFixed(0)} s); after warm-up ${mb(Math.min(...afterWarmup.map((s) => s.rss))).toFixed(1)}..${mb(Math.max(...afterWarmup.map((s) => s.rss))).toFixed(1)} MB`,
  );
  t.diagnostic(`RSS samples (MB): ${samples.map((s) => mb(s.rss).toFixed(0)).join(' ')}`);
  t.diagnostic(`heapUsed samples (MB): ${samples.map((s) => mb(s.heapUsed).toFixed(0)).join(' ')}`);

  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed`);
  assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} responses differ from the library's`);
  assert.equal(perCase.size, cases.length, 'every prompt was asked');
  assert.ok(ok >= CLIENTS * 2, `${ok} requests`);
  assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/completions', status: '200' })! + metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/chat/completions', status: '200' })!, ok);
  assert.equal(metricValue(metrics, 'aglm_active_sequences'), 0);
  // Cells still held belong to the prompt cache (at most --parallel finished requests kept for reuse).
  assert.ok(metricValue(metrics, 'aglm_kv_cells_used')! <= metricValue(metrics, 'aglm_prompt_cache_tokens')!);
  assert.ok(metricValue(metrics, 'aglm_prompt_cache_entries')! <= PARALLEL);
  assert.ok(samples.length >= LOAD_SECONDS - 2, `${samples.length} memory samples`);
  if (LOAD_SECONDS < 30) {
    t.diagnostic('a run under 30 s: resident memory not asserted');
    return;
  }
  assert.ok(
    mb(tailMax - base.rss) < RSS_BOUND_MB,
    `resident memory grew ${mb(tailMax - base.rss).toFixed(1)} MB after warm-up (bound ${RSS_BOUND_MB} MB)`,
  );
  assert.ok(
    mb(tailMedian - earlyMedian) < RSS_MEDIAN_BOUND_MB,
    `the median resident memory grew ${mb(tailMedian - earlyMedian).toFixed(1)} MB (bound ${RSS_MEDIAN_BOUND_MB} MB)`,
  );
});

test('queue full: with parallel 1 and maxQueue 1 a burst gets 503s with Retry-After, and the server keeps answering', async () => {
  await using model = await loadModel();
  const s = await listen(model, { parallel: 1, maxQueue: 1 });
  try {
    const want = await model.complete('Once upon a time', { maxTokens: 200, temperature: 0 });
    const body = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 200, temperature: 0 };
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => postJson(s.url, '/v1/completions', { ...body, stream: i % 2 === 1 })));
    const busy = burst.filter((r) => r.status === 503);
    const served = burst.filter((r) => r.status === 200);
    assert.equal(busy.length + served.length, burst.length, `statuses: ${burst.map((r) => r.status).join(' ')}`);
    assert.ok(busy.length >= 1, 'some requests were refused');
    assert.ok(served.length >= 2, 'the running request and the queued one were served');
    for (const r of busy) {
      // A plain JSON error, also for a stream (nothing was sent yet), with the time to wait.
      assert.equal(r.headers['retry-after'], '1');
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const e = assertErrorShape(r.json);
      assert.equal(e.type, 'overloaded_error');
      assert.equal(e.code, 'overloaded');
    }
    for (const r of served) {
      const text = r.json ? r.json.choices[0].text : r.text.split('\n\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.text ?? '').join('');
      assert.equal(text, want.text);
    }
    // Counted; nothing left waiting; the server answers the next request.
    const metrics = await scrape(s.url);
    assert.equal(metricValue(metrics, 'aglm_requests_total', { endpoint: '/v1/completions', status: '503' }), busy.length);
    assert.equal(metricValue(metrics, 'aglm_queue_depth'), 0);
    const next = await postJson(s.url, '/v1/completions', body);
    assert.equal(next.status, 200);
    assert.equal(next.json.choices[0].text, want.text);
    // Through the openai client (no retries), a refusal is a 503 APIError.
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const [first, second, third] = await Promise.allSettled([
      client.completions.create(body),
      client.completions.create(body),
      client.completions.create(body),
    ]);
    assert.equal(first.status, 'fulfilled');
    const refused = [second, third].filter((r) => r.status === 'rejected');
    for (const r of refused) {
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof OpenAI.APIError && e.status === 503, String(e));
    }
    assert.ok(refused.length >= 1, 'the third of three at once is refused');
  } finally {
    await s.close();
  }
});
