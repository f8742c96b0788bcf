// Rank-ordered BPE over one word: symbols are token ids, merges are looked up by (left id, right id) in an
// open-addressing table, and the lowest-ranked adjacent pair merges first (leftmost among equal pairs). Words are
// either GPT-2 byte-level (one symbol per UTF-8 byte) or raw text (one symbol per code point, with byte fallback).
// Results are cached per word.
import { AglmError } from '../errors.js';
import { BYTE_CHARS, toByteLevel } from './byte-level.js';
import { TokenType, type Vocab } from './vocab.js';

export interface BpeOptions {
  /** Symbols are the bytes of the word, shown as GPT-2 byte-level characters in the vocabulary. */
  byteLevel: boolean;
  /** A word that is a vocabulary token as a whole is that token, without merging. */
  ignoreMerges: boolean;
  /** Raw-text mode: a character missing from the vocabulary becomes its UTF-8 byte tokens ('<0xXX>'). */
  byteFallback: boolean;
  /** Raw-text mode without byte fallback (or missing byte tokens): the id for a missing character. */
  unk?: number;
  /** Consecutive unknown characters give one unknown token. */
  fuseUnk?: boolean;
}

/** Words up to this many symbols merge by rescanning the pair ranks; longer ones use a heap. */
const SCAN_LIMIT = 48;
const CACHE_LIMIT = 100_000;
const CACHE_WORD_LIMIT = 128;
const NO_RANK = 0x7fffffff;

const utf8 = new TextEncoder();

/**
 * The merge table: (left id, right id) -> rank, and the merged token's id. The merged id is looked up the first time
 * the pair is found (most of a large merge list is never used by a given text); a merge whose result is not a token
 * never applies.
 */
class MergeTable {
  readonly #left: Int32Array;
  readonly #right: Int32Array;
  readonly #rank: Int32Array;
  /** -2: not looked up yet; -1: the merged piece is not a token. */
  readonly #merged: Int32Array;
  readonly #mask: number;
  readonly #mergedId: (left: number, right: number) => number;
  size = 0;

  constructor(capacityFor: number, mergedId: (left: number, right: number) => number) {
    let cap = 16;
    while (cap < capacityFor * 2) cap *= 2;
    this.#mask = cap - 1;
    this.#left = new Int32Array(cap).fill(-1);
    this.#right = new Int32Array(cap);
    this.#rank = new Int32Array(cap);
    this.#merged = new Int32Array(cap).fill(-2);
    this.#mergedId = mergedId;
  }

  /** Adds a merge; a pair already present keeps its first (lowest) rank. */
  add(l: number, r: number, rank: number): void {
    let h = this.#hash(l, r);
    for (;;) {
      const k = this.#left[h];
      if (k === -1) break;
      if (k === l && this.#right[h] === r) return;
      h = (h + 1) & this.#mask;
    }
    this.#left[h] = l;
    this.#right[h] = r;
    this.#rank[h] = rank;
    this.size++;
  }

  #hash(l: number, r: number): number {
    return (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x632be5ab, 0x85ebca77)) & this.#mask;
  }

  /** The slot of an applicable merge of the pair, or -1. */
  find(l: number, r: number): number {
    if (l < 0 || r < 0) return -1;
    let h = this.#hash(l, r);
    for (;;) {
      const k = this.#left[h];
      if (k === -1) return -1;
      if (k === l && this.#right[h] === r) break;
      h = (h + 1) & this.#mask;
    }
    if (this.#merged[h] === -2) this.#merged[h] = this.#mergedId(l, r);
    return this.#merged[h] >= 0 ? h : -1;
  }

  rankAt(slot: number): number {
    return slot < 0 ? NO_RANK : this.#rank[slot];
  }

  mergedAt(slot: number): number {
    return this.#merged[slot];
  }
}

/**
 * Piece -> id over the vocabulary that looks up a substring without allocating it (reading hundreds of thousands of
 * merge rules would otherwise slice and hash each half). The lowest id wins for a repeated piece.
 */
class PieceIndex {
  readonly #vocab: Vocab;
  readonly #slots: Int32Array;
  readonly #mask: number;

  constructor(vocab: Vocab) {
    this.#vocab = vocab;
    let cap = 16;
    while (cap < vocab.size * 2) cap *= 2;
    this.#mask = cap - 1;
    this.#slots = new Int32Array(cap).fill(-1);
    for (let id = 0; id < vocab.size; id++) {
      const p = vocab.piece(id);
      let h = PieceIndex.hash(p, 0, p.length) & this.#mask;
      for (;;) {
        const other = this.#slots[h];
        if (other === -1) {
          this.#slots[h] = id;
          break;
        }
        if (vocab.piece(other) === p) break;
        h = (h + 1) & this.#mask;
      }
    }
  }

  static hash(s: string, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return h ^ (h >>> 15);
  }

  /** The id of the piece s[start, end), or -1. */
  find(s: string, start: number, end: number): number {
    const len = end - start;
    let h = PieceIndex.hash(s, start, end) & this.#mask;
    for (;;) {
      const id = this.#slots[h];
      if (id === -1) return -1;
      const p = this.#vocab.piece(id);
      if (p.length === len && s.startsWith(p, start)) return id;
      h = (h + 1) & this.#mask;
    }
  }
}

/** True when some text token has a '▁' after another character. */
function hasInnerSpaceMark(vocab: Vocab): boolean {
  for (let id = 0; id < vocab.size; id++) {
    const t = vocab.type(id);
    if ((t === TokenType.normal || t === TokenType.userDefined) && /[^\u2581]\u2581/.test(vocab.piece(id))) return true;
  }
  return false;
}

// Scratch arrays shared by every call (encoding is synchronous).
let symScratch = new Int32Array(256);
let rankScratch = new Int32Array(256);
let slotScratch = new Int32Array(256);
let cpScratch = new Int32Array(256);

export class BpeModel {
  readonly vocab: Vocab;
  readonly options: Readonly<BpeOptions>;
  readonly #merges: MergeTable;
  readonly #byteSymbols: Int32Array;
  readonly #charIds = new Map<number, number>();
  readonly #cache = new Map<string, number[]>();
  /**
   * Raw-text mode: a word may be cut before every '▁' that follows another character. Exact when no token has a '▁'
   * after another character and '▁' is a token: merges only ever form tokens, so none can cross such a cut, and each
   * part merges on its own as it would inside the whole word. Lets SentencePiece-style BPE (no pre-tokenizer: the
   * whole text is one word) merge and cache word by word.
   */
  readonly #cutBeforeSpaceMark: boolean;

  constructor(vocab: Vocab, merges: readonly (string | readonly string[])[], options: BpeOptions) {
    this.vocab = vocab;
    this.options = Object.freeze({ ...options });
    this.#merges = new MergeTable(merges.length, (l, r) => vocab.idOf(vocab.piece(l) + vocab.piece(r)) ?? -1);
    const index = new PieceIndex(vocab);
    for (let rank = 0; rank < merges.length; rank++) {
      const m = merges[rank];
      let l: number;
      let r: number;
      if (typeof m === 'string') {
        const sp = m.indexOf(' ', 1);
        if (sp < 0) throw new AglmError('GGUF_INVALID', `The BPE merge ${JSON.stringify(m)} is not two pieces separated by a space`);
        l = index.find(m, 0, sp);
        r = index.find(m, sp + 1, m.length);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
        l = index.find(m[0], 0, m[0].length);
        r = index.find(m[1], 0, m[1].length);
      } else {
        throw new AglmError('GGUF_INVALID', `The BPE merge ${JSON.stringify(m)} is not a pair of pieces`);
      }
      // A merge whose parts are not tokens can never apply.
      if (l >= 0 && r >= 0) this.#merges.add(l, r, rank);
    }
    this.#cutBeforeSpaceMark = !options.byteLevel && vocab.idOf('\u2581') !== undefined && !hasInnerSpaceMark(vocab);
    this.#byteSymbols = new Int32Array(256);
    for (let b = 0; b < 256; b++) this.#byteSymbols[b] = vocab.idOf(BYTE_CHARS[b]) ?? -1;
  }

  /** How many merge rules apply. */
  get mergeCount(): number {
    return this.#merges.size;
  }

  /** Appends the ids of one pre-tokenized word. */
  encodeWord(word: string, out: number[]): void {
    if (this.#cutBeforeSpaceMark && word.length > 1 && word.indexOf('\u2581', 1) > 0) {
      let start = 0;
      for (let i = 1; i <= word.length; i++) {
        if (i < word.length && !(word.charCodeAt(i) === 0x2581 && word.charCodeAt(i - 1) !== 0x2581)) continue;
        this.#encodePart(word.slice(start, i), out);
        start = i;
      }
      return;
    }
    this.#encodePart(word, out);
  }

  #encodePart(word: string, out: number[]): void {
    if (word.length === 0) return;
    const cached = this.#cache.get(word);
    if (cached !== undefined) {
      for (let i = 0; i < cached.length; i++) out.push(cached[i]);
      return;
    }
    const ids: number[] = [];
    this.#encodeUncached(word, ids);
    if (word.length <= CACHE_WORD_LIMIT) {
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(word, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  #encodeUncached(word: string, out: number[]): void {
    const o = this.options;
    if (o.ignoreMerges) {
      const whole = this.vocab.idOf(o.byteLevel ? toByteLevel(word) : word);
      if (whole !== undefined && this.#isTextToken(whole)) {
        out.push(whole);
        return;
      }
    }
    const n = o.byteLevel ? this.#byteSymbolsOf(word) : this.#charSymbolsOf(word);
    const count = n <= SCAN_LIMIT ? this.#mergeByScan(n) : this.#mergeByHeap(n);
    this.#emit(count, out);
  }

  #isTextToken(id: number): boolean {
    const t = this.vocab.type(id);
    return t === TokenType.normal || t === TokenType.userDefined;
  }

  #ensureScratch(n: number): void {
    if (symScratch.length >= n) return;
    let cap = symScratch.length;
    while (cap < n) cap *= 2;
    symScratch = new Int32Array(cap);
    rankScratch = new Int32Array(cap);
    slotScratch = new Int32Array(cap);
    cpScratch = new Int32Array(cap);
  }

  /** Fills symScratch with the byte symbols of the word; returns the count. */
  #byteSymbolsOf(word: string): number {
    let ascii = true;
    for (let i = 0; i < word.length; i++) {
      if (word.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.#ensureScratch(word.length);
      for (let i = 0; i < word.length; i++) {
        symScratch[i] = this.#byteSymbols[word.charCodeAt(i)];
        cpScratch[i] = word.charCodeAt(i);
      }
      return word.length;
    }
    const bytes = utf8.encode(word);
    this.#ensureScratch(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      symScratch[i] = this.#byteSymbols[bytes[i]];
      cpScratch[i] = bytes[i];
    }
    return bytes.length;
  }

  /** Fills symScratch with one symbol per code point (-1 when the character is not a token); returns the count. */
  #charSymbolsOf(word: string): number {
    this.#ensureScratch(word.length);
    let n = 0;
    for (let i = 0; i < word.length; i++) {
      const cp = word.codePointAt(i)!;
      if (cp > 0xffff) i++;
      let id = this.#charIds.get(cp);
      if (id === undefined) {
        const t = this.vocab.idOf(String.fromCodePoint(cp));
        id = t !== undefined && this.#isTextToken(t) ? t : -1;
        this.#charIds.set(cp, id);
      }
      symScratch[n] = id;
      cpScratch[n] = cp;
      n++;
    }
    return n;
  }

  /** Merges symScratch[0..n) in place by rescanning pair ranks; returns the new count. */
  #mergeByScan(n: number): number {
    const sym = symScratch;
    const rank = rankScratch;
    const slot = slotScratch;
    const merges = this.#merges;
    for (let i = 0; i + 1 < n; i++) {
      slot[i] = merges.find(sym[i], sym[i + 1]);
      rank[i] = merges.rankAt(slot[i]);
    }
    while (n > 1) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (rank[i] < best) {
          best = rank[i];
          at = i;
        }
      }
      if (at < 0) break;
      sym[at] = merges.mergedAt(slot[at]);
      for (let i = at + 1; i + 1 < n; i++) {
        sym[i] = sym[i + 1];
        cpScratch[i] = cpScratch[i + 1];
        slot[i] = slot[i + 1];
        rank[i] = rank[i + 1];
      }
      n--;
      if (at > 0) {
        slot[at - 1] = merges.find(sym[at - 1], sym[at]);
        rank[at - 1] = merges.rankAt(slot[at - 1]);
      }
      if (at + 1 < n) {
        slot[at] = merges.find(sym[at], sym[at + 1]);
        rank[at] = merges.rankAt(slot[at]);
      } else {
        rank[at] = NO_RANK;
      }
    }
    return n;
  }

  /** Merges symScratch[0..n) with a linked list and a heap of candidate pairs; compacts and returns the count. */
  #mergeByHeap(n: number): number {
    const sym = symScratch;
    const merges = this.#merges;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Heap entries: rank, left position, left id, right id (a stale entry no longer matches the symbols).
    const heap = new PairHeap();
    const push = (l: number) => {
      const r = next[l];
      if (l < 0 || r < 0) return;
      const s = merges.find(sym[l], sym[r]);
      if (s >= 0) heap.push(merges.rankAt(s), l, sym[l], sym[r]);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const [rank, l, leftId, rightId] = heap.pop();
      const r = next[l];
      if (!alive[l] || r < 0 || sym[l] !== leftId || sym[r] !== rightId) continue;
      const s = merges.find(leftId, rightId);
      if (merges.rankAt(s) !== rank) continue;
      sym[l] = merges.mergedAt(s);
      alive[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      if (prev[l] >= 0) push(prev[l]);
      push(l);
    }
    let count = 0;
    for (let i = 0; i >= 0; i = next[i]) {
      sym[count] = sym[i];
      cpScratch[count] = cpScratch[i];
      count++;
    }
    return count;
  }

  #emit(count: number, out: number[]): void {
    const o = this.options;
    let lastUnk = false;
    for (let i = 0; i < count; i++) {
      const id = symScratch[i];
      if (id >= 0) {
        out.push(id);
        lastUnk = false;
        continue;
      }
      if (o.byteLevel) continue; // a byte the vocabulary has no character for: nothing can stand for it
      const bytes = utf8.encode(String.fromCodePoint(cpScratch[i]));
      if (o.byteFallback) {
        const ids: number[] = [];
        for (const b of bytes) {
          const bid = this.vocab.byteId(b);
          if (bid === undefined) break;
          ids.push(bid);
        }
        if (ids.length === bytes.length) {
          out.push(...ids);
          lastUnk = false;
          continue;
        }
      }
      if (o.unk === undefined) {
        const what = JSON.stringify(String.fromCodePoint(cpScratch[i]));
        throw new AglmError('INVALID_ARGUMENT', `The vocabulary cannot encode ${what}: no token, byte token or unknown token`);
      }
      if (!(o.fuseUnk && lastUnk)) out.push(o.unk);
      lastUnk = true;
    }
  }
}

/** A binary min-heap of merge candidates ordered by rank, then position. */
class PairHeap {
  #rank: number[] = [];
  #pos: number[] = [];
  #left: number[] = [];
  #right: number[] = [];

  get size(): number {
    return this.#rank.length;
  }

  #less(i: number, j: number): boolean {
    return this.#rank[i] < this.#rank[j] || (this.#rank[i] === this.#rank[j] && this.#pos[i] < this.#pos[j]);
  }

  #swap(i: number, j: number): void {
    for (const a of [this.#rank, this.#pos, this.#left, this.#right]) {
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  push(rank: number, pos: number, left: number, right: number): void {
    this.#rank.push(rank);
    this.#pos.push(pos);
    this.#left.push(left);
    this.#right.push(right);
    let i = this.#rank.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  pop(): [number, number, number, number] {
    const top: [number, number, number, number] = [this.#rank[0], this.#pos[0], this.#left[0], this.#right[0]];
    const last = this.#rank.length - 1;
    this.#swap(0, last);
    this.#rank.pop();
    this.#pos.pop();
    this.#left.pop();
    this.#right.pop();
    const n = this.#rank.length;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      const b = a + 1;
      let m = i;
      if (a < n && this.#less(a, m)) m = a;
      if (b < n && this.#less(b, m)) m = b;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
    return top;
  }
}
