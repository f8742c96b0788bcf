// `open-autoglm serve` as a process: it listens, serves the model under --model-name with --api-key and --ctx-size,
// and on SIGTERM stops accepting connections, lets the request in flight finish its stream, and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { writeRandomLlamaModel } from '../../lib/tools/random-model.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { assertErrorShape, postJson, SseParser } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serve: SIGTERM stops accepting, lets the in-flight stream finish, and exits 0', { timeout: 120_000 }, async (t) => {
  const path = join(tempDir(t), 'slow-512.gguf');
  await writeRandomLlamaModel(path, {
    embeddingLength: 512, blockCount: 6, headCount: 8, headCountKv: 4, feedForwardLength: 1376, vocabSize: 512, contextLength: 2048,
  });
  const args = ['serve', '--model', path, '--port', '0', '--parallel', '2', '--ctx-size', '512', '--api-key', 'k3y', '--model-name', 'slow'];
  const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cli-main.ts'), ...args], { cwd: repoRoot });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  t.after(() => {
    clearTimeout(killer);
    child.kill('SIGKILL');
  });
  const until = async (re: RegExp): Promise<RegExpExecArray> => {
    const deadline = performance.now() + 60_000;
    for (;;) {
      const m = re.exec(stderr);
      if (m) return m;
      assert.ok(child.exitCode === null, `serve exited early: ${stderr}`);
      assert.ok(performance.now() < deadline, `no ${re} in: ${stderr}`);
      await sleep(10);
    }
  };
  const port = Number((await until(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  const url = `http://127.0.0.1:${port}`;
  await until(/serving slow \(llama/);
  const auth = { authorization: 'Bearer k3y' };

  assert.equal((await fetch(`${url}/health`)).status, 200);
  const models = (await (await fetch(`${url}/v1/models`, { headers: auth })).json()) as { data: { id: string }[] };
  assert.equal(models.data[0].id, 'slow');
  assert.equal((await fetch(`${url}/v1/models`)).status, 401);
  // --ctx-size 512: a 600-token prompt is refused with both counts.
  const tooLong = await postJson(url, '/v1/completions', { prompt: Array.from({ length: 600 }, (_, i) => 3 + (i % 500)), max_tokens: 4 }, auth);
  assert.equal(tooLong.status, 400);
  const e = assertErrorShape(tooLong.json);
  assert.equal(e.code, 'context_length_exceeded');
  assert.match(e.message, /\b512 tokens\b/);
  assert.match(e.message, /\b600 tokens\b/);

  // A stream long enough to be in flight when SIGTERM comes (EOS banned: exactly max_tokens tokens).
  const maxTokens = 300;
  const events = new SseParser();
  let streamEnded = 0;
  const streamDone = new Promise<number>((resolve, reject) => {
    const req = request(`${url}/v1/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
      res.on('data', (c: Buffer) => events.push(c));
      res.on('end', () => {
        streamEnded = performance.now();
        resolve(res.statusCode ?? 0);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ prompt: [1, 30, 40, 50, 60], max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true }, logit_bias: { '2': -100 } }));
  });
  while (!events.events.some((ev) => ev.data !== undefined)) await sleep(2);
  child.kill('SIGTERM');
  await until(/SIGTERM: shutting down/);
  // No new connections...
  const refused = await new Promise<string>((resolve) => {
    const req = request(`${url}/health`, { agent: false }, (res) => {
      res.resume();
      resolve(`answered ${res.statusCode}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
    req.end();
  });
  assert.equal(refused, 'ECONNREFUSED');
  const tokensAtRefusal = events.events.filter((ev) => ev.data !== undefined).length;
  assert.ok(tokensAtRefusal < maxTokens, `the stream was still in flight (${tokensAtRefusal} events) when connections were refused`);

  // ...but the one in flight finishes: every token, the usage, [DONE].
  assert.equal(await streamDone, 200);
  const data = events.events.filter((ev) => ev.data !== undefined).map((ev) => ev.data!);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.ok(chunks.every((c) => c.error === undefined), 'no error event');
  assert.equal(chunks.at(-1).usage.completion_tokens, maxTokens);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');

  const exit = await exited;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, stderr);
  assert.ok(exit.at >= streamEnded, 'it exited after the stream ended');
  t.diagnostic(`stream: ${tokensAtRefusal} of ${maxTokens} tokens sent when a new connection was refused; exited ${(exit.at - streamEnded).toFixed(0)} ms after the stream ended`);
});
