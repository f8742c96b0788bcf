// Top-p (nucleus): keeps the most likely candidates until their probabilities sum to at least p, taken best first.
import type { Candidates } from './candidates.js';
import { heapify, popTo } from './heap.js';

/** Sum of exp(v - max) over the live candidates. */
function expSum(c: Candidates, max: number): number {
  let sum = 0;
  for (let i = 0; i < c.n; i++) sum += Math.exp(c.vals[i] - max);
  return sum;
}

/** Keeps the smallest best-first prefix whose probability reaches p (at least one). p >= 1: no change. */
export function applyTopP(c: Candidates, p: number): void {
  if (p >= 1 || c.n <= 1) return;
  const max = c.maxVal();
  const sum = expSum(c, max);
  if (c.sorted) {
    let cum = 0;
    for (let i = 0; i < c.n; i++) {
      cum += Math.exp(c.vals[i] - max) / sum;
      if (cum >= p) {
        c.n = i + 1;
        return;
      }
    }
    return;
  }
  // Unsorted: a max-heap over all candidates, popped one at a time until the mass reaches p.
  heapify(c.ids, c.vals, c.n, true);
  const ids = c.spareIds();
  const vals = c.spareVals();
  let cum = 0;
  let m = 0;
  for (let size = c.n; size > 0; size--) {
    popTo(c.ids, c.vals, size, true);
    ids[m] = c.ids[size - 1];
    vals[m] = c.vals[size - 1];
    m++;
    cum += Math.exp(vals[m - 1] - max) / sum;
    if (cum >= p) break;
  }
  c.commit(m, true);
}
