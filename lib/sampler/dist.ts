// The final draw: softmax over the live candidates and one pick by cumulative probability with the seeded RNG.
import type { Candidates } from './candidates.js';
import { argmax } from './greedy.js';
import type { Rng } from './rng.js';

/** Draws a token id with probability softmax(vals); falls back to argmax when no candidate has any mass. */
export function drawToken(c: Candidates, rng: Rng): number {
  const max = c.maxVal();
  if (max === -Infinity || max === Infinity) return argmax(c);
  let sum = 0;
  for (let i = 0; i < c.n; i++) {
    c.vals[i] = Math.exp(c.vals[i] - max);
    sum += c.vals[i];
  }
  const r = rng.nextFloat() * sum;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < c.n; i++) {
    if (c.vals[i] === 0) continue;
    acc += c.vals[i];
    last = i;
    if (r < acc) return c.ids[i];
  }
  return c.ids[last];
}
