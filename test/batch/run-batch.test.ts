// runBatch as a library: sync and async iterables (objects and JSON strings), each line's result equal to the
// library's single-request output, errors per line in OpenAI's shapes, backpressure on input and output, the skip
// sets, progress counts, abort (prompt, in-flight requests cancelled), leaving early, a KV pool too small for
// `parallel` requests, and option checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AglmError, loadModel, runBatch, type BatchProgress, type BatchResultLine } from '../../lib/index.js';
import { batchCases, caseKey, checkResult, references, resultKey } from './batch-fixtures.js';

const model = await loadModel();
test.after(() => model.dispose());

const cases = batchCases(60);
const refs = await references(model, cases);

async function collect(it: AsyncIterable<BatchResultLine>): Promise<BatchResultLine[]> {
  const out: BatchResultLine[] = [];
  for await (const r of it) out.push(r);
  return out;
}

function checkAll(results: BatchResultLine[], want = cases): void {
  const byKey = new Map(results.map((r) => [resultKey(r), r]));
  assert.equal(byKey.size, results.length, 'one result per key');
  assert.deepEqual([...byKey.keys()].sort(), want.map(caseKey).sort());
  for (const c of want) checkResult(byKey.get(caseKey(c))!, c, refs.get(caseKey(c)));
}

test('a sync iterable of JSON strings: one result per line, each equal to the request run alone', async () => {
  const progress: BatchProgress[] = [];
  const run = runBatch(
    model,
    cases.map((c) => c.text),
    { parallel: 4, onProgress: (p) => progress.push(p) },
  );
  const results: BatchResultLine[] = [];
  let summary: BatchProgress | undefined;
  for (;;) {
    const r = await run.next();
    if (r.done) {
      summary = r.value;
      break;
    }
    results.push(r.value);
  }
  checkAll(results);
  const failed = results.filter((r) => r.error !== null || r.response?.status_code !== 200).length;
  assert.equal(failed, cases.filter((c) => c.expect.kind === 'line' || c.expect.kind === 'status').length);
  assert.equal(summary.done, 60);
  assert.equal(summary.failed, failed);
  assert.equal(summary.skipped, 0);
  assert.equal(summary.inFlight, 0);
  const usage = results.map((r) => (r.response?.status_code === 200 ? (r.response.body as { usage: Record<string, number> }).usage : undefined));
  assert.equal(summary.promptTokens, usage.reduce((n, u) => n + (u?.prompt_tokens ?? 0), 0));
  assert.equal(summary.completionTokens, usage.reduce((n, u) => n + (u?.completion_tokens ?? 0), 0));
  // One progress call per result, counted before it is yielded; never more in flight than `parallel`.
  assert.equal(progress.length, 60);
  assert.deepEqual(progress.map((p) => p.done), Array.from({ length: 60 }, (_, i) => i + 1));
  assert.ok(progress.every((p) => p.inFlight <= 4));
});

test('an async iterable of objects, pulled only as sequences free up; a slow consumer holds the input back', async () => {
  const requests = cases.filter((c) => c.expect.kind === 'completion' || c.expect.kind === 'chat');
  let pulled = 0;
  let yielded = 0;
  let most = 0;
  async function* source() {
    for (const c of requests) {
      await new Promise((r) => setImmediate(r));
      pulled++;
      most = Math.max(most, pulled - yielded);
      yield JSON.parse(c.text) as Record<string, unknown>;
    }
  }
  const results: BatchResultLine[] = [];
  for await (const r of runBatch(model, source(), { parallel: 3 })) {
    yielded++;
    results.push(r);
    if (yielded % 5 === 0) await new Promise((r) => setTimeout(r, 20)); // a slow writer
  }
  checkAll(results, requests);
  // In flight (3) plus the one waiting for a sequence, plus the one read while that waits.
  assert.ok(most <= 3 + 2, `read ${most} requests ahead of the results`);
});

test('line errors: duplicates, non-objects, missing fields; 4xx bodies as the server answers; n > parallel', async () => {
  const lines = [
    JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/completions', body: { prompt: 'Tim', max_tokens: 4, temperature: 0 } }),
    '',
    JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/completions', body: { prompt: 'Tim' } }),
    '   ',
    JSON.stringify({ custom_id: 7, method: 'POST', url: '/v1/completions', body: {} }),
    JSON.stringify({ custom_id: 'b', url: '/v1/completions', body: {} }),
    JSON.stringify({ custom_id: 'c', method: 'POST', body: {} }),
    JSON.stringify({ custom_id: 'd', method: 'POST', url: '/v1/completions' }),
    JSON.stringify({ custom_id: 'e', method: 'POST', url: '/v1/completions', body: 'prompt' }),
    JSON.stringify({ custom_id: 'f', method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'Hi' }], n: 5 } }),
    JSON.stringify({ custom_id: 'g', method: 'POST', url: '/v1/completions', body: { prompt: 'Tim', logprobs: true } }),
    'null',
  ];
  const results = await collect(runBatch(model, lines, { parallel: 2 }));
  const by = (line: number) => results.find((r) => r.error?.line === line);
  const id = (cid: string) => results.filter((r) => r.custom_id === cid);
  assert.equal(results.length, 10, 'blank lines give nothing');
  assert.equal(id('a').length, 2);
  assert.deepEqual(by(3)?.error, {
    code: 'duplicate_custom_id',
    message: "Line 3: the custom_id 'a' is a duplicate of another request's; custom_ids must be unique in a batch",
    param: 'custom_id',
    line: 3,
  });
  assert.equal(id('a').find((r) => r.error === null)?.response?.status_code, 200);
  assert.deepEqual([by(5)?.error?.code, by(5)?.custom_id], ['invalid_custom_id', null]);
  assert.deepEqual([by(6)?.error?.code, by(6)?.error?.param, by(6)?.custom_id], ['missing_required_parameter', 'method', 'b']);
  assert.deepEqual([by(7)?.error?.code, by(7)?.error?.param], ['missing_required_parameter', 'url']);
  assert.deepEqual([by(8)?.error?.code, by(8)?.error?.param], ['missing_required_parameter', 'body']);
  assert.deepEqual([by(12)?.error?.code, by(12)?.custom_id], ['invalid_json_line', null]);
  const e = id('e')[0];
  assert.deepEqual(e.response?.body, { error: { message: 'The request body must be a JSON object', type: 'invalid_request_error', param: null, code: 'invalid_json' } });
  assert.equal(e.response?.status_code, 400);
  assert.equal(e.error, null);
  const f = id('f')[0].response!;
  assert.equal(f.status_code, 400);
  assert.equal((f.body as { error: { param: string } }).error.param, 'n');
  assert.equal((id('g')[0].response?.body as { error: { code: string } }).error.code, 'unsupported_parameter');
});

test('skip and skipLines pass over what a previous run wrote; a later duplicate of a skipped id is still one', async () => {
  const lines = cases.map((c) => c.text);
  const first = await collect(runBatch(model, lines.slice(0, 30)));
  const skip = new Set(first.filter((r) => r.error === null).map((r) => r.custom_id!));
  const skipLines = new Set(first.filter((r) => r.error !== null).map((r) => r.error!.line));
  const last: BatchProgress[] = [];
  const dup = JSON.stringify({ custom_id: 'req-1', method: 'POST', url: '/v1/completions', body: { prompt: 'x' } });
  const second = await collect(runBatch(model, [...lines, dup], { skip, skipLines, onProgress: (p) => last.push(p) }));
  assert.equal(last.at(-1)!.skipped, 30);
  assert.equal(second.length, 31);
  checkAll([...first, ...second.slice().filter((r) => r.error?.line !== 61)]);
  assert.equal(second.find((r) => r.error?.line === 61)?.error?.code, 'duplicate_custom_id');
});

test('abort: rejects with ABORTED at once, cancelling the requests in flight; leaving early closes the engine too', async () => {
  const long = Array.from({ length: 8 }, (_, i) => ({
    custom_id: `long-${i}`,
    method: 'POST',
    url: '/v1/completions',
    body: { prompt: `Once upon a time ${i}`, max_tokens: 1200, temperature: 0 },
  }));
  // The whole batch, for scale.
  const t0 = performance.now();
  const all = await collect(runBatch(model, long.slice(0, 4), { parallel: 4, contextSize: 8192 }));
  const full = performance.now() - t0;
  assert.equal(all.length, 4);

  const controller = new AbortController();
  const started = performance.now();
  setTimeout(() => controller.abort(new Error('stop')), Math.max(20, full / 4));
  let abortedAt = 0;
  controller.signal.addEventListener('abort', () => (abortedAt = performance.now()));
  const got: BatchResultLine[] = [];
  await assert.rejects(
    (async () => {
      for await (const r of runBatch(model, long, { parallel: 4, contextSize: 8192, signal: controller.signal })) got.push(r);
    })(),
    (e: unknown) => e instanceof AglmError && e.code === 'ABORTED' && (e.cause as Error).message === 'stop',
  );
  const stopped = performance.now();
  assert.equal(got.length, 0, 'nothing finished before the abort');
  assert.ok(stopped - abortedAt < Math.max(100, full / 4), `stopped ${(stopped - abortedAt).toFixed(0)} ms after the abort (a full run: ${full.toFixed(0)} ms)`);
  assert.ok(stopped - started < full, 'in-flight requests did not run to the end');

  // An aborted signal: the first next() rejects.
  await assert.rejects(runBatch(model, long, { signal: AbortSignal.abort() }).next(), { code: 'ABORTED' });

  // Leaving the loop early cancels the rest and frees the context; the model serves the next batch.
  for await (const r of runBatch(model, cases.map((c) => c.text), { parallel: 2 })) {
    assert.ok(r.id);
    break;
  }
  const again = await collect(runBatch(model, cases.slice(0, 5).map((c) => c.text)));
  checkAll(again, cases.slice(0, 5));
});

test('a KV pool too small for `parallel` requests: they run fewer at once and all succeed', async () => {
  const some = cases.filter((c) => c.expect.kind === 'completion').slice(0, 12);
  const results = await collect(runBatch(model, some.map((c) => c.text), { parallel: 4, contextSize: 64 }));
  checkAll(results, some);
});

test('options and requests are checked at the call (INVALID_ARGUMENT)', () => {
  const bad: [unknown, unknown][] = [
    [[], { parallel: 0 }],
    [[], { parallel: 1.5 }],
    [[], { contextSize: -1 }],
    [[], { kvCacheType: 'f8' }],
    [[], { skip: ['a'] }],
    [[], { skip: new Set([1]) }],
    [[], { skipLines: new Set(['1']) }],
    [[], { onProgress: 'yes' }],
    [[], { signal: {} }],
    [[], { modelName: '' }],
    [[], 'options'],
    ['a string', undefined],
    [42, undefined],
    [null, undefined],
  ];
  for (const [requests, options] of bad) {
    assert.throws(
      () => runBatch(model, requests as never, options as never),
      (e: unknown) => e instanceof AglmError && e.code === 'INVALID_ARGUMENT',
      JSON.stringify([requests, options]),
    );
  }
});
