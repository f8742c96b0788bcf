// open-autoglm batch, spawned: 200 requests (chat and completions at temperature 0, embeddings, invalid lines) killed
// with SIGKILL half way, a torn line appended, then rerun with the same --output: exactly 200 result lines, no key
// twice, each equal to that request's output from the library alone; a fresh run of the same file gives the same (and
// its speed is reported). SIGINT stops a run at once (exit 130) with what was written intact. Usage and bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, type BatchResultLine } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { batchCases, caseKey, checkResult, references, resultKey, type BatchCase } from './batch-fixtures.js';

const TIMEOUT_MS = 120_000;

/** The CLI from the TypeScript sources (as test/helpers/cli-main.ts runs it), its stderr collected. */
class Batch {
  readonly child: ChildProcessWithoutNullStreams;
  err = '';
  out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done = false;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cli-main.ts'), 'batch', ...args], { cwd: repoRoot });
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => (this.err += s));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), TIMEOUT_MS);
    void this.exited.then(() => {
      this.done = true;
      clearTimeout(timer);
    });
  }

  /** Resolves once `ok()` holds, polling every 5 ms; rejects if the process exits first. */
  async until(what: string, ok: () => boolean): Promise<void> {
    while (!ok()) {
      if (this.done) throw new Error(`exited before ${what}; stderr ${JSON.stringify(this.err)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

const completeLines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0);

const cases = batchCases(200);
const requestFile = (dir: string) => {
  const input = join(dir, 'requests.jsonl');
  writeFileSync(input, cases.map((c) => c.text).join('\n') + '\n');
  return input;
};

/** The output file: whole lines only, exactly one per input line, each as the request alone gives it. */
function checkOutput(file: string, refs: Awaited<ReturnType<typeof references>>): void {
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  const results = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as BatchResultLine);
  assert.equal(results.length, 200);
  const byKey = new Map<string, BatchResultLine>();
  for (const r of results) {
    assert.ok(!byKey.has(resultKey(r)), `${resultKey(r)} twice`);
    byKey.set(resultKey(r), r);
  }
  const ids = results.filter((r) => r.custom_id !== null).map((r) => r.custom_id);
  assert.equal(new Set(ids).size, ids.length, 'no custom_id twice');
  const byCase = new Map<string, BatchCase>(cases.map((c) => [caseKey(c), c]));
  assert.deepEqual([...byKey.keys()].sort(), [...byCase.keys()].sort());
  for (const [key, c] of byCase) checkResult(byKey.get(key)!, c, refs.get(key));
}

test('200 requests: SIGKILL half way, a torn line, a rerun: 200 results, each equal to the request run alone', async (t) => {
  const dir = tempDir(t);
  const input = requestFile(dir);
  const output = join(dir, 'results.jsonl');

  // The first run reads the requests from stdin and gets only 130 of them, so it cannot finish before the kill.
  const first = new Batch(['--input', '-', '--output', output, '--progress', 'lines', '--parallel', '4']);
  first.child.stdin.write(cases.slice(0, 130).map((c) => c.text).join('\n') + '\n');
  await first.until('100 results', () => completeLines(output) >= 100);
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  const kept = completeLines(output);
  assert.ok(kept >= 100 && kept <= 130, `${kept} lines`);
  assert.match(first.err, /batch: 1 done, 0 failed/, 'no total with stdin input');
  // A crash in the middle of a write leaves a partial last line.
  const torn = '{"id":"batch_req_torn","custom_id":"req-199","response":{"status_co';
  appendFileSync(output, torn);

  const second = new Batch(['--input', input, '--output', output, '--progress', 'lines']);
  const refs = await (async () => {
    await using model = await loadModel();
    return await references(model, cases);
  })();
  const exit = await second.exited;
  assert.equal(exit.code, 0, second.err);
  assert.match(second.err, new RegExp(`cut off a torn last line \\(${torn.length} bytes\\)`));
  assert.match(second.err, new RegExp(`resuming: ${kept} results already in`));
  assert.match(second.err, new RegExp(`batch: ${200 - kept}/${200 - kept} done`), 'the total is the file less what is done');
  assert.match(second.err, new RegExp(`batch: ${200 - kept} done \\(\\d+ succeeded, \\d+ failed\\), ${kept} skipped;`));
  checkOutput(output, refs);

  // The same file from scratch: the same results; the summary's numbers are the batch's speed.
  const fresh = join(dir, 'fresh.jsonl');
  const t0 = performance.now();
  const third = new Batch(['--input', input, '--output', fresh, '--progress', 'none']);
  assert.equal((await third.exited).code, 0, third.err);
  const wall = (performance.now() - t0) / 1000;
  const s = /batch: 200 done \((\d+) succeeded, (\d+) failed\), 0 skipped; (\d+) tokens \((\d+) prompt \+ (\d+) generated\) in ([\d.]+) s, ([\d.]+) generated tokens\/s/.exec(third.err);
  assert.ok(s, third.err);
  assert.equal(Number(s[2]), cases.filter((c) => c.expect.kind === 'line' || c.expect.kind === 'status').length);
  checkOutput(fresh, refs);
  t.diagnostic(`200 requests, parallel 4: ${s[6]} s in the batch (${wall.toFixed(2)} s with start-up and model load), ${s[5]} generated + ${s[4]} prompt tokens, ${s[7]} generated tokens/s`);
});

test('SIGINT stops at once: exit 130, an interrupted summary, whole lines only; a rerun finishes the rest', async (t) => {
  const dir = tempDir(t);
  const output = join(dir, 'results.jsonl');
  const input = join(dir, 'requests.jsonl');
  const lines = [
    JSON.stringify({ custom_id: 'short', method: 'POST', url: '/v1/completions', body: { prompt: 'Tim', max_tokens: 4, temperature: 0 } }),
    ...Array.from({ length: 4 }, (_, i) =>
      JSON.stringify({ custom_id: `long-${i}`, method: 'POST', url: '/v1/completions', body: { prompt: `Once upon a time ${i}`, max_tokens: 800, temperature: 0 } }),
    ),
  ];
  writeFileSync(input, lines.join('\n') + '\n');
  const run = new Batch(['--input', input, '--output', output, '--progress', 'lines', '--parallel', '2', '--ctx-size', '8192']);
  await run.until('the first result', () => completeLines(output) >= 1);
  const sent = performance.now();
  run.child.kill('SIGINT');
  const exit = await run.exited;
  const took = performance.now() - sent;
  assert.equal(exit.code, 130, run.err);
  assert.ok(took < 2000, `exited ${took.toFixed(0)} ms after SIGINT`);
  assert.match(run.err, /batch: interrupted: \d+ done \(\d+ succeeded, 0 failed\), 0 skipped;/);
  const text = readFileSync(output, 'utf8');
  assert.ok(text.endsWith('\n'));
  const done = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as BatchResultLine);
  assert.ok(done.length < lines.length);

  const rerun = new Batch(['--input', input, '--output', output, '--progress', 'none', '--parallel', '4', '--ctx-size', '8192']);
  assert.equal((await rerun.exited).code, 0, rerun.err);
  assert.match(rerun.err, new RegExp(`${lines.length - done.length} done .*, ${done.length} skipped;`));
  const ids = readFileSync(output, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as BatchResultLine).custom_id);
  assert.deepEqual(ids.slice().sort(), ['long-0', 'long-1', 'long-2', 'long-3', 'short']);
});

test('--input -: runs to the end of stdin; SIGINT while it waits for more input exits at once', async (t) => {
  const dir = tempDir(t);
  const ended = new Batch(['--input', '-', '--output', join(dir, 'a.jsonl'), '--progress', 'lines']);
  ended.child.stdin.end(cases.slice(0, 5).map((c) => c.text).join('\n'));
  assert.equal((await ended.exited).code, 0, ended.err);
  assert.equal(completeLines(join(dir, 'a.jsonl')), 5);
  assert.match(ended.err, /batch: 5 done \(5 succeeded, 0 failed\)/);

  const open = new Batch(['--input', '-', '--output', join(dir, 'b.jsonl'), '--progress', 'lines']);
  open.child.stdin.write(cases.slice(0, 5).map((c) => c.text).join('\n') + '\n'); // and no end
  await open.until('5 results', () => completeLines(join(dir, 'b.jsonl')) === 5);
  const sent = performance.now();
  open.child.kill('SIGINT');
  assert.equal((await open.exited).code, 130, open.err);
  assert.ok(performance.now() - sent < 2000);
  assert.match(open.err, /batch: interrupted: 5 done \(5 succeeded, 0 failed\)/);
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('batch usage (exit 2) and bad values (exit 1 with a typed error); a foreign --output is left alone', async (t) => {
  const dir = tempDir(t);
  const input = requestFile(dir);
  assert.match((await cli(['help'])).out, /open-autoglm batch \[--model FILE\] --input FILE\|- --output FILE/);
  assert.equal((await cli(['batch', '--input', input])).code, 2);
  assert.equal((await cli(['batch', '--output', join(dir, 'o.jsonl')])).code, 2);
  assert.equal((await cli(['batch', '--input', input, '--output', join(dir, 'o.jsonl'), 'extra'])).code, 2);
  const bad = async (args: string[], pattern: RegExp) => {
    const r = await cli(['batch', ...args]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, pattern);
  };
  await bad(['--input', input, '--output', join(dir, 'o.jsonl'), '--parallel', '0'], /--parallel .*INVALID_ARGUMENT/);
  await bad(['--input', input, '--output', join(dir, 'o.jsonl'), '--progress', 'fancy'], /--progress .*INVALID_ARGUMENT/);
  await bad(['--input', input, '--output', input], /the same file \[INVALID_ARGUMENT\]/);
  await bad(['--input', join(dir, 'none.jsonl'), '--output', join(dir, 'o.jsonl')], /FILE_NOT_FOUND/);
  const foreign = join(dir, 'notes.txt');
  writeFileSync(foreign, 'my notes\n');
  await bad(['--input', input, '--output', foreign], /notes\.txt line 1 is not a batch result line.*INVALID_ARGUMENT/);
  assert.equal(readFileSync(foreign, 'utf8'), 'my notes\n');
  assert.equal(existsSync(join(dir, 'o.jsonl')), false, 'nothing written on bad values');
});
