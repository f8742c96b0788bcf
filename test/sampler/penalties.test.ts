// Repetition penalties against hand-computed logits, the sliding window, and their effect through the Sampler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPenalties, PenaltyWindow } from '../../lib/sampler/penalties.js';
import { Sampler } from '../../lib/sampler/index.js';

const close = (a: ArrayLike<number>, b: readonly number[]) =>
  assert.ok(Array.from(a).every((v, i) => Math.abs(v - b[i]) < 1e-12), `${Array.from(a)} != ${b}`);

test('repeat, frequency and presence penalties match a hand computation', () => {
  const w = new PenaltyWindow(64);
  for (const t of [0, 1, 1, 3, 3, 3, 5, 6]) w.accept(t);
  const logits = Float64Array.of(2, -1, 0.5, 3, -2, 0, 0.25);
  applyPenalties(logits, w.counts, { repeat: 1.5, frequency: 0.1, presence: 0.2 });
  close(logits, [
    2 / 1.5 - 1 * 0.1 - 0.2, // token 0: seen once, positive logit divided
    -1 * 1.5 - 2 * 0.1 - 0.2, // token 1: seen twice, negative logit multiplied
    0.5, // token 2: not seen
    3 / 1.5 - 3 * 0.1 - 0.2, // token 3: seen three times
    -2, // token 4: not seen
    0 - 0.1 - 0.2, // token 5: a zero logit stays zero under the repeat penalty
    0.25 / 1.5 - 0.1 - 0.2, // token 6: small positive logit divided
  ]);
});

test('the window forgets tokens older than its size', () => {
  const w = new PenaltyWindow(3);
  for (const t of [0, 1, 1, 3]) w.accept(t);
  assert.deepEqual(new Map(w.counts), new Map([[1, 2], [3, 1]]));
  w.accept(5);
  assert.deepEqual(new Map(w.counts), new Map([[1, 1], [3, 1], [5, 1]]));
  w.reset();
  assert.equal(w.counts.size, 0);
  const off = new PenaltyWindow(0);
  off.accept(1);
  assert.equal(off.counts.size, 0);
});

test('the sampler applies penalties before the greedy pick and leaves the caller\'s logits alone', () => {
  const s = new Sampler({ temperature: 0, repeatPenalty: 1.5 }, 4);
  const logits = Float32Array.of(2, 1.9, -1, 0);
  const copy = logits.slice();
  assert.equal(s.sample(logits), 0);
  s.accept(0);
  assert.equal(s.sample(logits), 1); // 2 / 1.5 < 1.9
  assert.deepEqual(logits, copy);
  s.reset();
  assert.equal(s.sample(logits), 0);
  const p = new Sampler({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.01, penaltyWindow: 2 }, 4);
  p.acceptMany([0, 3, 3]); // window of 2 keeps [3, 3]: token 0 is no longer penalized
  assert.equal(p.sample(Float32Array.of(1, 0.9, 0, 1.2)), 0); // 1.2 - 0.02 - 0.5 = 0.68
});
