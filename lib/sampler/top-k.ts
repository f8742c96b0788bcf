// Top-k: keeps the k highest-logit candidates, found with a size-k min-heap in one pass (no full sort).
import type { Candidates } from './candidates.js';
import { outranks, popTo, siftDown, siftUp } from './heap.js';

/** Keeps the k best candidates, leaving them sorted best first. k = 0 or k >= n: no change. */
export function applyTopK(c: Candidates, k: number): void {
  if (k <= 0 || k >= c.n) return;
  const ids = c.spareIds();
  const vals = c.spareVals();
  // The k best so far as a min-heap: the weakest of them on top, replaced by anything that beats it.
  for (let i = 0; i < k; i++) {
    ids[i] = c.ids[i];
    vals[i] = c.vals[i];
    siftUp(ids, vals, i, false);
  }
  for (let i = k; i < c.n; i++) {
    ids[k] = c.ids[i];
    vals[k] = c.vals[i];
    if (!outranks(ids, vals, k, 0)) continue;
    ids[0] = ids[k];
    vals[0] = vals[k];
    siftDown(ids, vals, 0, k, false);
  }
  // Heap sort: popping the weakest to the end leaves [0, k) in descending order.
  for (let end = k; end > 1; end--) popTo(ids, vals, end, false);
  c.commit(k, true);
}
