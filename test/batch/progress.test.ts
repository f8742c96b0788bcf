// Batch progress text: the plain line, the bar and the summary from given counts; the reporter's pacing in each mode
// with a fake clock (bar: redrawn in place at most every intervalMs, the last request always; lines: every `every`
// requests or intervalMs; none: the summary only); option checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BatchProgressReporter,
  formatDuration,
  formatProgressBar,
  formatProgressLine,
  formatSummary,
  type ProgressReporterOptions,
} from '../../lib/batch/index.js';
import type { BatchProgress } from '../../lib/index.js';

const at = (done: number, elapsedMs: number, extra: Partial<BatchProgress> = {}): BatchProgress => ({
  done,
  failed: 0,
  skipped: 0,
  inFlight: 0,
  promptTokens: done * 10,
  completionTokens: done * 20,
  elapsedMs,
  ...extra,
});

function reporter(options: Omit<ProgressReporterOptions, 'write' | 'now'>): { r: BatchProgressReporter; out: string[]; clock: { t: number } } {
  const out: string[] = [];
  const clock = { t: 0 };
  return { r: new BatchProgressReporter({ ...options, write: (s) => out.push(s), now: () => clock.t }), out, clock };
}

test('durations, the plain line, the bar and the summary', () => {
  assert.deepEqual([0, 400, 12_400, 59_600, 187_000, 3_723_000].map(formatDuration), ['0s', '0s', '12s', '1:00', '3:07', '1:02:03']);
  const p = at(40, 8000, { failed: 3 });
  assert.equal(formatProgressLine(p, 200), 'open-autoglm batch: 40/200 done, 3 failed, 100.0 tokens/s, ETA 32s');
  assert.equal(formatProgressLine(p, undefined), 'open-autoglm batch: 40 done, 3 failed, 100.0 tokens/s');
  assert.equal(formatProgressLine(at(0, 10), 200), 'open-autoglm batch: 0/200 done, 0 failed, 0.0 tokens/s, ETA ?');
  assert.equal(formatProgressBar(p, 200, 10), '[##........] 40/200 20% | 3 failed | 100.0 tok/s | ETA 32s');
  assert.equal(formatProgressBar(at(200, 40_000), 200, 10), '[##########] 200/200 100% | 100.0 tok/s | ETA 0s');
  assert.equal(formatProgressBar(at(7, 1000), undefined), '7 done | 140.0 tok/s');
  assert.equal(
    formatSummary(at(200, 12_345, { failed: 5, skipped: 12 })),
    'open-autoglm batch: 200 done (195 succeeded, 5 failed), 12 skipped; 6000 tokens (2000 prompt + 4000 generated) in 12.35 s, 324.0 generated tokens/s',
  );
  assert.equal(
    formatSummary(at(3, 1000), true),
    'open-autoglm batch: interrupted: 3 done (3 succeeded, 0 failed), 0 skipped; 90 tokens (30 prompt + 60 generated) in 1.00 s, 60.0 generated tokens/s',
  );
});

test('lines: one every `every` requests or intervalMs, none for unchanged counts, then the summary', () => {
  const { r, out, clock } = reporter({ mode: 'lines', total: 50, intervalMs: 1000 });
  for (let done = 1; done <= 50; done++) {
    clock.t = done * 30; // 30 ms a request: the interval passes every 34 requests
    r.update(at(done, clock.t));
    r.update(at(done, clock.t, { skipped: 1 })); // a skip: nothing new to say
  }
  r.finish(at(50, 1500));
  assert.deepEqual(out, [
    'open-autoglm batch: 1/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 5/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 10/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 15/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 20/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 25/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 30/50 done, 0 failed, 666.7 tokens/s, ETA 1s\n',
    'open-autoglm batch: 35/50 done, 0 failed, 666.7 tokens/s, ETA 0s\n',
    'open-autoglm batch: 40/50 done, 0 failed, 666.7 tokens/s, ETA 0s\n',
    'open-autoglm batch: 45/50 done, 0 failed, 666.7 tokens/s, ETA 0s\n',
    'open-autoglm batch: 50/50 done, 0 failed, 666.7 tokens/s, ETA 0s\n',
    'open-autoglm batch: 50 done (50 succeeded, 0 failed), 0 skipped; 1500 tokens (500 prompt + 1000 generated) in 1.50 s, 666.7 generated tokens/s\n',
  ]);

  // No total: every 100 requests by default, and whenever intervalMs has passed.
  const u = reporter({ mode: 'lines', intervalMs: 1000 });
  for (let done = 1; done <= 250; done++) {
    u.clock.t = done * 13;
    u.r.update(at(done, u.clock.t));
  }
  assert.deepEqual(
    u.out.map((s) => /batch: (\d+) done/.exec(s)?.[1]),
    ['1', '78', '100', '177', '200'],
  );
});

test('bar: redrawn in place at most every intervalMs, the last request always; finish clears it', () => {
  const { r, out, clock } = reporter({ mode: 'bar', total: 4, intervalMs: 100, width: 8 });
  r.update(at(1, 50));
  clock.t = 50;
  r.update(at(2, 100)); // too soon
  clock.t = 120;
  r.update(at(3, 150));
  clock.t = 130;
  r.update(at(4, 200)); // the last: drawn at once
  r.update(at(4, 200, { skipped: 1 })); // no redraw
  r.finish(at(4, 210));
  assert.deepEqual(out, [
    '\r[##......] 1/4 25% | 400.0 tok/s | ETA 0s\x1b[K',
    '\r[######..] 3/4 75% | 400.0 tok/s | ETA 0s\x1b[K',
    '\r[########] 4/4 100% | 400.0 tok/s | ETA 0s\x1b[K',
    '\r\x1b[K',
    'open-autoglm batch: 4 done (4 succeeded, 0 failed), 0 skipped; 120 tokens (40 prompt + 80 generated) in 0.21 s, 381.0 generated tokens/s\n',
  ]);
});

test('none: only the summary; bad options are INVALID_ARGUMENT', () => {
  const { r, out } = reporter({ mode: 'none', total: 3 });
  r.update(at(1, 10));
  r.update(at(3, 30));
  r.finish(at(3, 30, { failed: 1 }), true);
  assert.deepEqual(out, [
    'open-autoglm batch: interrupted: 3 done (2 succeeded, 1 failed), 0 skipped; 90 tokens (30 prompt + 60 generated) in 0.03 s, 2000.0 generated tokens/s\n',
  ]);
  const write = () => {};
  for (const o of [{ mode: 'fancy', write }, { mode: 'bar' }, { mode: 'bar', write, every: 0 }, { mode: 'lines', write, total: -1 }, { mode: 'lines', write, now: 5 }]) {
    assert.throws(() => new BatchProgressReporter(o as never), { code: 'INVALID_ARGUMENT' }, JSON.stringify(o));
  }
});
