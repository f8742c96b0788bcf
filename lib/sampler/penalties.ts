// Repetition penalties: the window of recently accepted tokens and the repeat/frequency/presence adjustments.

export interface PenaltyParams {
  repeat: number;
  frequency: number;
  presence: number;
}

/** The last `capacity` accepted tokens with a count per distinct token. */
export class PenaltyWindow {
  readonly capacity: number;
  readonly #ring: Int32Array;
  #start = 0;
  #length = 0;
  readonly #counts = new Map<number, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#ring = new Int32Array(capacity);
  }

  /** How often each token occurs in the window. */
  get counts(): ReadonlyMap<number, number> {
    return this.#counts;
  }

  accept(token: number): void {
    if (this.capacity === 0) return;
    if (this.#length === this.capacity) {
      this.#forget(this.#ring[this.#start]);
      this.#ring[this.#start] = token;
      this.#start = (this.#start + 1) % this.capacity;
    } else {
      this.#ring[(this.#start + this.#length) % this.capacity] = token;
      this.#length++;
    }
    this.#counts.set(token, (this.#counts.get(token) ?? 0) + 1);
  }

  reset(): void {
    this.#start = 0;
    this.#length = 0;
    this.#counts.clear();
  }

  #forget(token: number): void {
    const c = this.#counts.get(token)!;
    if (c > 1) this.#counts.set(token, c - 1);
    else this.#counts.delete(token);
  }
}

export function penaltiesActive(p: PenaltyParams): boolean {
  return p.repeat !== 1 || p.frequency !== 0 || p.presence !== 0;
}

/**
 * Adjusts `logits` (indexed by token id) for each token in `counts`: repeat divides a positive logit
 * (multiplies a non-positive one) by the penalty, then frequency subtracts count * frequency and presence
 * subtracts presence once.
 */
export function applyPenalties(logits: Float64Array, counts: ReadonlyMap<number, number>, p: PenaltyParams): void {
  for (const [token, count] of counts) {
    let v = logits[token];
    if (p.repeat !== 1) v = v > 0 ? v / p.repeat : v * p.repeat;
    logits[token] = v - count * p.frequency - p.presence;
  }
}
