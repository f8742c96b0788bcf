// A max-priority queue of candidate merges (bigrams) for the SentencePiece BPE encoder: best score first, then leftmost.

export interface Bigram {
  /** Index of the left symbol. */
  left: number;
  /** Index of the right symbol. */
  right: number;
  /** Score of the merged piece. */
  score: number;
  /** Length (UTF-16 units) of the merged piece when the bigram was queued; a mismatch later means it is stale. */
  size: number;
}

/** True when a should be merged before b. */
function before(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

export class BigramQueue {
  readonly #heap: Bigram[] = [];

  get size(): number {
    return this.#heap.length;
  }

  push(b: Bigram): void {
    const h = this.#heap;
    let i = h.length;
    h.push(b);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(b, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = b;
  }

  /** Removes and returns the best bigram; undefined when empty. */
  pop(): Bigram | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) this.#siftDown(last);
    return top;
  }

  #siftDown(b: Bigram): void {
    const h = this.#heap;
    const n = h.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(h[child + 1], h[child])) child++;
      if (!before(h[child], b)) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = b;
  }
}
