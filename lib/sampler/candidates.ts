// The scratch candidate list the sampling stages narrow in place: token ids with their logits, double-buffered.

export class Candidates {
  /** Candidate token ids; the first `n` are live. */
  ids: Int32Array;
  /** Logit of each candidate (parallel to ids). */
  vals: Float64Array;
  n = 0;
  /** True when the live candidates are in descending order (ties: lower id first). */
  sorted = false;
  #spareIds: Int32Array;
  #spareVals: Float64Array;

  constructor(capacity: number) {
    this.ids = new Int32Array(capacity);
    this.vals = new Float64Array(capacity);
    this.#spareIds = new Int32Array(capacity);
    this.#spareVals = new Float64Array(capacity);
  }

  /** Copies all logits in, candidate i = token i (so vals is indexed by token id until a stage narrows it); NaN -> -Infinity. */
  load(logits: ArrayLike<number>): void {
    const n = logits.length;
    for (let i = 0; i < n; i++) {
      const v = logits[i];
      this.ids[i] = i;
      this.vals[i] = v === v ? v : -Infinity;
    }
    this.n = n;
    this.sorted = false;
  }

  /** Keeps only the candidates whose token `allowed[id]` is 1 (order kept); returns how many remain. */
  keep(allowed: Uint8Array): number {
    let n = 0;
    for (let i = 0; i < this.n; i++) {
      const id = this.ids[i];
      if (allowed[id] === 1) {
        this.ids[n] = id;
        this.vals[n++] = this.vals[i];
      }
    }
    this.n = n;
    return n;
  }

  /** Buffers a stage may write a new list into before calling commit(). */
  spareIds(): Int32Array {
    return this.#spareIds;
  }

  spareVals(): Float64Array {
    return this.#spareVals;
  }

  /** Makes the spare buffers, holding `n` candidates, the live ones. */
  commit(n: number, sorted: boolean): void {
    [this.ids, this.#spareIds] = [this.#spareIds, this.ids];
    [this.vals, this.#spareVals] = [this.#spareVals, this.vals];
    this.n = n;
    this.sorted = sorted;
  }

  /** The largest live logit (-Infinity when none). */
  maxVal(): number {
    if (this.sorted && this.n > 0) return this.vals[0];
    let max = -Infinity;
    for (let i = 0; i < this.n; i++) if (this.vals[i] > max) max = this.vals[i];
    return max;
  }
}
