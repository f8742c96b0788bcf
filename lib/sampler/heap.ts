// Binary-heap primitives over parallel (ids, vals) arrays, ranking by value then lower id, for partial selection.

/** True when entry a ranks above entry b: larger value, or equal value and smaller id. */
export function outranks(ids: Int32Array, vals: Float64Array, a: number, b: number): boolean {
  return vals[a] > vals[b] || (vals[a] === vals[b] && ids[a] < ids[b]);
}

function swap(ids: Int32Array, vals: Float64Array, a: number, b: number): void {
  const id = ids[a];
  ids[a] = ids[b];
  ids[b] = id;
  const v = vals[a];
  vals[a] = vals[b];
  vals[b] = v;
}

/**
 * Restores the heap property below i within [0, n). `bestOnTop` true: a max-heap (best entry at 0);
 * false: a min-heap (worst entry at 0).
 */
export function siftDown(ids: Int32Array, vals: Float64Array, i: number, n: number, bestOnTop: boolean): void {
  for (;;) {
    let top = i;
    const l = 2 * i + 1;
    const r = l + 1;
    if (l < n) top = pick(ids, vals, l, top, bestOnTop);
    if (r < n) top = pick(ids, vals, r, top, bestOnTop);
    if (top === i) return;
    swap(ids, vals, i, top);
    i = top;
  }
}

/** Of entries a and b, the one that belongs nearer the top. */
function pick(ids: Int32Array, vals: Float64Array, a: number, b: number, bestOnTop: boolean): number {
  return outranks(ids, vals, a, b) === bestOnTop ? a : b;
}

export function siftUp(ids: Int32Array, vals: Float64Array, i: number, bestOnTop: boolean): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (outranks(ids, vals, i, parent) !== bestOnTop) return;
    swap(ids, vals, i, parent);
    i = parent;
  }
}

/** Arranges [0, n) as a heap in O(n). */
export function heapify(ids: Int32Array, vals: Float64Array, n: number, bestOnTop: boolean): void {
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(ids, vals, i, n, bestOnTop);
}

/** Removes the top of a heap of n entries by moving it to index n - 1; the heap is then [0, n - 1). */
export function popTo(ids: Int32Array, vals: Float64Array, n: number, bestOnTop: boolean): void {
  swap(ids, vals, 0, n - 1);
  siftDown(ids, vals, 0, n - 1, bestOnTop);
}
