// Test helpers: a small seeded generator for test data and sort-based reference versions of the sampling stages.

/** mulberry32: deterministic test data, independent of the sampler's own RNG. */
export function testRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random logits in [-8, 8]; with `ties`, values are rounded to quarters so equal logits are common. */
export function randomLogits(rand: () => number, n: number, ties = false): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rand() * 16 - 8;
    out[i] = ties ? Math.round(v * 4) / 4 : v;
  }
  return out;
}

/** Token ids sorted by logit descending, lower id first on ties (a full sort: the reference, not the implementation). */
export function sortedIds(logits: ArrayLike<number>, ids: readonly number[] = Array.from(logits, (_, i) => i)): number[] {
  return [...ids].sort((a, b) => logits[b] - logits[a] || a - b);
}

export function refTopK(logits: ArrayLike<number>, k: number): number[] {
  const all = sortedIds(logits);
  return k <= 0 ? all : all.slice(0, k);
}

/** The smallest best-first prefix of `ids` (already sorted) whose softmax mass reaches p; `sumOrder` sets the summation order. */
export function refTopP(logits: ArrayLike<number>, ids: readonly number[], p: number, sumOrder: readonly number[] = ids): number[] {
  const max = Math.max(...ids.map((i) => logits[i]));
  let sum = 0;
  for (const i of sumOrder) sum += Math.exp(logits[i] - max);
  let cum = 0;
  for (let j = 0; j < ids.length; j++) {
    cum += Math.exp(logits[ids[j]] - max) / sum;
    if (cum >= p) return ids.slice(0, j + 1);
  }
  return [...ids];
}

/** The ids whose softmax probability is at least p times the largest one. */
export function refMinP(logits: ArrayLike<number>, ids: readonly number[], p: number): number[] {
  const max = Math.max(...ids.map((i) => logits[i]));
  const sum = ids.reduce((s, i) => s + Math.exp(logits[i] - max), 0);
  const pMax = 1 / sum;
  return ids.filter((i) => Math.exp(logits[i] - max) / sum >= p * pMax);
}

export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
