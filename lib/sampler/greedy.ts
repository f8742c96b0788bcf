// Greedy choice: the candidate with the largest logit, the lowest id on ties.
import type { Candidates } from './candidates.js';
import { outranks } from './heap.js';

export function argmax(c: Candidates): number {
  let best = 0;
  for (let i = 1; i < c.n; i++) if (outranks(c.ids, c.vals, i, best)) best = i;
  return c.ids[best];
}
