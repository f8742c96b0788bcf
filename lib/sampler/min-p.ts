// Min-p: drops candidates whose probability is below p times the most likely candidate's (one linear pass).
import type { Candidates } from './candidates.js';

/** Keeps candidates with exp(v - max) >= p, in their current order. p = 0: no change. */
export function applyMinP(c: Candidates, p: number): void {
  if (p <= 0 || c.n <= 1) return;
  const max = c.maxVal();
  if (max === -Infinity) return;
  let m = 0;
  for (let i = 0; i < c.n; i++) {
    if (Math.exp(c.vals[i] - max) < p) continue;
    c.ids[m] = c.ids[i];
    c.vals[m] = c.vals[i];
    m++;
  }
  c.n = m;
}
