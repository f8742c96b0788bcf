// Temperature: divides the candidates' logits by t (> 0) before the softmax.
import type { Candidates } from './candidates.js';

export function applyTemperature(c: Candidates, t: number): void {
  if (t === 1) return;
  for (let i = 0; i < c.n; i++) c.vals[i] /= t;
}
