// The Sampler chain: greedy = argmax, seeded reproducibility, and the empirical distribution against softmax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler } from '../../lib/sampler/index.js';
import { Rng } from '../../lib/sampler/rng.js';
import { randomLogits, softmax, sortedIds, testRandom } from './reference.js';

test('temperature 0 is argmax (lowest id on ties), whatever the other options', () => {
  const rand = testRandom(11);
  const s = new Sampler({ temperature: 0, topK: 3, topP: 0.5, minP: 0.2 }, 1000);
  for (let i = 0; i < 50; i++) {
    const logits = randomLogits(rand, 1000, i % 2 === 0);
    assert.equal(s.sample(logits), sortedIds(logits)[0]);
  }
  assert.equal(new Sampler({ temperature: 0 }, 4).sample(Float32Array.of(0, 7, 7, 1)), 1);
});

/** Samples `steps` tokens from a fixed random sequence of logits, accepting each one. */
function run(sampler: Sampler, steps: number): number[] {
  const rand = testRandom(99);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = sampler.sample(randomLogits(rand, 300));
    sampler.accept(t);
    out.push(t);
  }
  return out;
}

test('same seed and logits give the same tokens; another seed gives others', () => {
  const opts = { temperature: 1.5, topK: 0, topP: 1, minP: 0, repeatPenalty: 1.1, seed: 42 };
  const a = run(new Sampler(opts, 300), 200);
  assert.deepEqual(run(new Sampler(opts, 300), 200), a);
  assert.notDeepEqual(run(new Sampler({ ...opts, seed: 43 }, 300), 200), a);
  const big = { ...opts, seed: 2 ** 40 + 42 };
  assert.notDeepEqual(run(new Sampler(big, 300), 200), a, 'the high bits of the seed count');
  const s = new Sampler(opts, 300);
  run(s, 50);
  s.reset();
  assert.deepEqual(run(s, 200), a, 'reset() restarts the seeded sequence');
  const unseeded = new Sampler({ ...opts, seed: undefined }, 300);
  assert.ok(Number.isInteger(unseeded.seed));
  assert.deepEqual(run(new Sampler({ ...opts, seed: unseeded.seed }, 300), 200), run(unseeded, 200));
});

test('the RNG gives uniform doubles in [0, 1)', () => {
  const r = new Rng(7);
  let sum = 0;
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < 100000; i++) {
    const x = r.nextFloat();
    assert.ok(x >= 0 && x < 1);
    sum += x;
    bins[Math.floor(x * 10)]++;
  }
  assert.ok(Math.abs(sum / 100000 - 0.5) < 0.01);
  assert.ok(chiSquare(bins, new Array(10).fill(10000)) < 27.88); // df 9, p = 0.001
});

function chiSquare(observed: readonly number[], expected: readonly number[]): number {
  return observed.reduce((s, o, i) => s + (o - expected[i]) ** 2 / expected[i], 0);
}

/** Draw counts per token over `n` samples of the same logits. */
function histogram(s: Sampler, logits: Float32Array, n: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  return counts;
}

// Critical chi-square values at p = 0.001 by degrees of freedom.
const CHI2_CRIT: Record<number, number> = { 2: 13.82, 5: 20.52 };

test('20k draws at T=1 follow the softmax (chi-square)', () => {
  const logits = [1, 2, 0.5, -1, 3, 0];
  const n = 20000;
  const counts = histogram(new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1234 }, 6), Float32Array.from(logits), n);
  const expected = softmax(logits).map((p) => p * n);
  const chi2 = chiSquare(counts, expected);
  assert.ok(chi2 < CHI2_CRIT[5], `chi-square ${chi2.toFixed(2)} (counts ${counts}, expected ${expected.map((e) => e.toFixed(0))})`);
  // A clearly different distribution must fail the same bound, or the check proves nothing.
  const wrong = softmax(logits.map((v) => v * 1.1)).map((p) => p * n);
  assert.ok(chiSquare(counts, wrong) > CHI2_CRIT[5]);
});

test('draws with temperature and top-k follow the renormalized softmax of the survivors', () => {
  const logits = [1, 2, 0.5, -1, 3, 0];
  const n = 20000;
  const counts = histogram(new Sampler({ temperature: 0.7, topK: 3, topP: 1, minP: 0, seed: 5 }, 6), Float32Array.from(logits), n);
  const kept = [4, 1, 0];
  for (const id of [2, 3, 5]) assert.equal(counts[id], 0, `token ${id} is outside the top 3`);
  const probs = softmax(kept.map((i) => logits[i] / 0.7));
  const chi2 = chiSquare(kept.map((i) => counts[i]), probs.map((p) => p * n));
  assert.ok(chi2 < CHI2_CRIT[2], `chi-square ${chi2.toFixed(2)}`);
});

test('top-p and min-p limit which tokens can be drawn', () => {
  const logits = Float32Array.of(3, 2, 1, 0, -1, -2);
  const topP = histogram(new Sampler({ temperature: 1, topK: 0, topP: 0.8, minP: 0, seed: 9 }, 6), logits, 5000);
  // softmax: .636 .234 .086 ...: the nucleus for 0.8 is tokens 0 and 1.
  assert.deepEqual(topP.map((c) => c > 0), [true, true, false, false, false, false]);
  const minP = histogram(new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0.1, seed: 9 }, 6), logits, 5000);
  // exp(-2) = .135 >= .1 > exp(-3): tokens 0..2 survive.
  assert.deepEqual(minP.map((c) => c > 0), [true, true, true, false, false, false]);
});

test('-Infinity logits are never drawn; all -Infinity falls back to the lowest id', () => {
  const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 3 }, 4);
  const counts = histogram(s, Float32Array.of(-Infinity, 0, -Infinity, 0), 2000);
  assert.equal(counts[0] + counts[2], 0);
  assert.equal(s.sample(new Float32Array(4).fill(-Infinity)), 0);
});

test('logitBias moves, bans and forces tokens before the chain (and is checked)', () => {
  const logits = Float32Array.of(0, 5, 1, 2);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 3: 4 } }, 4).sample(logits), 3);
  assert.equal(new Sampler({ temperature: 0, logitBias: new Map([[1, -Infinity]]) }, 4).sample(logits), 3);
  const forced = new Sampler({ temperature: 1, seed: 5, logitBias: { 0: 100 } }, 4);
  for (let i = 0; i < 20; i++) assert.equal(forced.sample(logits), 0);
  assert.throws(() => new Sampler({ logitBias: { 4: 1 } }, 4), { code: 'INVALID_ARGUMENT', message: /logitBias/ });
  assert.throws(() => new Sampler({ logitBias: { x: 1 } as never }, 4), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new Sampler({ logitBias: { 1: 'a' } as never }, 4), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new Sampler({ logitBias: [1] as never }, 4), { code: 'INVALID_ARGUMENT' });
});
