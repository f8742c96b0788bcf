// Top-k, top-p and min-p candidate sets checked against sort-based reference implementations over random logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Candidates } from '../../lib/sampler/candidates.js';
import { argmax } from '../../lib/sampler/greedy.js';
import { applyMinP } from '../../lib/sampler/min-p.js';
import { applyTopK } from '../../lib/sampler/top-k.js';
import { applyTopP } from '../../lib/sampler/top-p.js';
import { randomLogits, refMinP, refTopK, refTopP, sortedIds, testRandom } from './reference.js';

const live = (c: Candidates) => Array.from(c.ids.subarray(0, c.n));

test('top-k keeps exactly the k best, best first, lower id on ties', () => {
  const rand = testRandom(1);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 3000);
    const logits = randomLogits(rand, n, trial % 2 === 0);
    const k = 1 + Math.floor(rand() * (trial % 3 === 0 ? n + 5 : 60));
    const c = new Candidates(n);
    c.load(logits);
    applyTopK(c, k);
    assert.equal(c.n, Math.min(k, n));
    if (k < n) assert.deepEqual(live(c), refTopK(logits, k), `n=${n} k=${k}`);
    else assert.deepEqual(new Set(live(c)), new Set(refTopK(logits, 0)));
  }
});

test('top-p without top-k selects the same nucleus as a full sort', () => {
  const rand = testRandom(2);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 3000);
    const logits = randomLogits(rand, n, trial % 2 === 0);
    const p = [0.1, 0.5, 0.9, 0.95, 0.999, 0][trial % 6] || rand();
    const c = new Candidates(n);
    c.load(logits);
    applyTopP(c, p);
    const ids = Array.from(logits, (_, i) => i);
    assert.deepEqual(live(c), n === 1 ? [0] : refTopP(logits, sortedIds(logits), p, ids), `n=${n} p=${p}`);
  }
});

test('top-p after top-k selects the same nucleus as a full sort', () => {
  const rand = testRandom(3);
  for (let trial = 0; trial < 200; trial++) {
    const n = 2 + Math.floor(rand() * 2000);
    const logits = randomLogits(rand, n, trial % 2 === 1);
    const k = 1 + Math.floor(rand() * 50);
    const p = rand();
    const c = new Candidates(n);
    c.load(logits);
    applyTopK(c, k);
    applyTopP(c, p);
    const top = refTopK(logits, Math.min(k, n));
    assert.deepEqual(live(c), refTopP(logits, top, p), `n=${n} k=${k} p=${p}`);
  }
});

test('min-p keeps the tokens at least p times as likely as the best, in order', () => {
  const rand = testRandom(4);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 3000);
    const logits = randomLogits(rand, n, trial % 2 === 0);
    const p = [0.05, 0.5, 1, 0.001][trial % 4];
    const c = new Candidates(n);
    c.load(logits);
    applyMinP(c, p);
    const all = Array.from(logits, (_, i) => i);
    assert.deepEqual(live(c), refMinP(logits, all, p), `n=${n} p=${p}`);
    // After top-k the survivors stay sorted (top-k with k >= n leaves the list as it was).
    c.load(logits);
    applyTopK(c, 30);
    applyMinP(c, p);
    assert.deepEqual(live(c), refMinP(logits, n > 30 ? refTopK(logits, 30) : all, p));
  }
});

test('argmax picks the largest logit, the lowest id on ties', () => {
  const rand = testRandom(5);
  for (let trial = 0; trial < 100; trial++) {
    const logits = randomLogits(rand, 1 + Math.floor(rand() * 500), true);
    const c = new Candidates(logits.length);
    c.load(logits);
    assert.equal(argmax(c), sortedIds(logits)[0]);
  }
  const c = new Candidates(4);
  c.load(Float32Array.of(1, 5, 5, 2));
  assert.equal(argmax(c), 1);
});
