// The grammar's pushdown automaton over one vocabulary: parse states are sets of stacks (each an interned, shared
// linked list of grammar positions, its top always a character class or a token element), plus the bytes of a UTF-8
// character a token left unfinished. Deciding a token walks its bytes; deciding the whole vocabulary walks a byte
// trie of every token's text once, sharing prefixes, and the answer is cached per parse state (a JSON string body or
// a list's separator comes back to the same state many times).
//
// Semantics follow llama.cpp's grammar sampler: a token is allowed when its text (special tokens included) continues
// the grammar, possibly ending inside a character that some continuation could complete; end-of-generation tokens
// only when the grammar may end; tokens with no text never.
import { classContains, Elem, type CompiledGrammar } from './compile.js';

/** The bytes of every token, as a trie (first child / next sibling), shared by every grammar on that vocabulary. */
export class TokenTrie {
  readonly vocabSize: number;
  /** Per node: first child, next sibling, the byte leading to it, first token ending here (-1 none). */
  readonly child: Int32Array;
  readonly sibling: Int32Array;
  readonly byte: Uint8Array;
  readonly firstToken: Int32Array;
  /** Per token: the next token ending at the same node (-1 none). */
  readonly nextToken: Int32Array;
  /** Per token: its bytes. */
  readonly bytes: Uint8Array[];
  /** End-of-generation tokens: never in the trie, allowed only where the grammar may end. */
  readonly eog: Set<number>;

  constructor(vocabSize: number, tokenBytes: (id: number) => Uint8Array, eog: Iterable<number>) {
    this.vocabSize = vocabSize;
    this.eog = new Set(eog);
    this.bytes = new Array(vocabSize);
    let total = 1;
    for (let id = 0; id < vocabSize; id++) {
      const b = this.eog.has(id) ? new Uint8Array(0) : tokenBytes(id);
      this.bytes[id] = b;
      total += b.length;
    }
    const child = new Int32Array(total).fill(-1);
    const sibling = new Int32Array(total).fill(-1);
    const byte = new Uint8Array(total);
    const firstToken = new Int32Array(total).fill(-1);
    this.nextToken = new Int32Array(vocabSize).fill(-1);
    let nodes = 1;
    for (let id = 0; id < vocabSize; id++) {
      const b = this.bytes[id];
      if (b.length === 0 || b[0] === 0) continue; // no text: never allowed (llama.cpp)
      let node = 0;
      for (const x of b) {
        let c = child[node];
        while (c >= 0 && byte[c] !== x) c = sibling[c];
        if (c < 0) {
          c = nodes++;
          byte[c] = x;
          sibling[c] = child[node];
          child[node] = c;
        }
        node = c;
      }
      this.nextToken[id] = firstToken[node];
      firstToken[node] = id;
    }
    this.child = child.subarray(0, nodes);
    this.sibling = sibling.subarray(0, nodes);
    this.byte = byte.subarray(0, nodes);
    this.firstToken = firstToken.subarray(0, nodes);
  }
}

/** A parse state: a set of stacks (interned: `set` indexes the automaton's table; set 0 is the dead, empty one) and a
 * pending UTF-8 character (`remain` bytes still to come, `value` its bits so far). */
export interface GrammarState {
  readonly set: number;
  readonly value: number;
  readonly remain: number;
}

const UTF8_LENGTH = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4];
const MASK_CACHE = 64;
const MEMO_LIMIT = 1 << 21;
const UNKNOWN = -1;

/** The automaton of one compiled grammar bound to one vocabulary; states are immutable values. */
export class GrammarAutomaton {
  readonly g: CompiledGrammar;
  readonly trie: TokenTrie;
  // Interned stacks: node i has top position pos[i] and the rest parent[i]; node 0 is the empty stack.
  #pos: number[] = [-1];
  #parent: number[] = [-1];
  #intern = new Map<number, number>();
  #expanded: (Int32Array | undefined)[] = [];
  // Interned stack sets (sorted stack ids; a set holding stack 0 may end there); set 0 is the empty set.
  #sets: Int32Array[] = [new Int32Array(0)];
  #setIndex = new Map<string, number>([['', 0]]);
  // Per set: the set after each ASCII character (UNKNOWN until asked); other characters in #wide.
  #ascii: (Int32Array | undefined)[] = [];
  #wide = new Map<number, number>();
  #masks = new Map<string, Uint8Array>();
  readonly initial: GrammarState;

  constructor(g: CompiledGrammar, trie: TokenTrie) {
    this.g = g;
    this.trie = trie;
    const starts: number[] = [];
    for (const a of g.alts[g.root]) starts.push(...this.#expand(this.#push(a, 0)));
    this.initial = { set: this.#internSet(starts), value: 0, remain: 0 };
  }

  /** The stack with position `pos` pushed on `parent` (or `parent` itself when pos is the end of an alternative). */
  #push(pos: number, parent: number): number {
    if (this.g.kinds[pos] === Elem.END) return parent;
    const key = parent * this.g.kinds.length + pos;
    let id = this.#intern.get(key);
    if (id === undefined) {
      id = this.#pos.length;
      this.#pos.push(pos);
      this.#parent.push(parent);
      this.#intern.set(key, id);
    }
    return id;
  }

  #internSet(stacks: number[]): number {
    const sorted = uniqueSorted(stacks);
    const key = sorted.join(',');
    let id = this.#setIndex.get(key);
    if (id === undefined) {
      id = this.#sets.length;
      this.#sets.push(sorted);
      this.#setIndex.set(key, id);
    }
    return id;
  }

  /** The stacks a stack stands for once its rule references are expanded: each topped by a terminal, or empty. */
  #expand(stack: number): Int32Array {
    const memo = this.#expanded[stack];
    if (memo) return memo;
    const out: number[] = [];
    const seen = new Set<number>();
    const todo = [stack];
    const { kinds, values, alts } = this.g;
    while (todo.length > 0) {
      const s = todo.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      if (s === 0 || kinds[this.#pos[s]] !== Elem.REF) {
        out.push(s);
        continue;
      }
      const p = this.#pos[s];
      const rest = this.#push(p + 1, this.#parent[s]);
      for (const a of alts[values[p]]) todo.push(this.#push(a, rest));
    }
    const result = uniqueSorted(out);
    this.#expanded[stack] = result;
    return result;
  }

  /** The set after code point `cp` (0 when no stack takes it). */
  #step(set: number, cp: number): number {
    if (cp < 128) {
      let row = this.#ascii[set];
      if (!row) this.#ascii[set] = row = new Int32Array(128).fill(UNKNOWN);
      const known = row[cp];
      if (known !== UNKNOWN) return known;
      return (row[cp] = this.#computeStep(set, cp));
    }
    const key = set * 0x110000 + cp;
    const known = this.#wide.get(key);
    if (known !== undefined) return known;
    if (this.#wide.size > MEMO_LIMIT) this.#wide.clear();
    const next = this.#computeStep(set, cp);
    this.#wide.set(key, next);
    return next;
  }

  #computeStep(set: number, cp: number): number {
    const out: number[] = [];
    const { kinds, values, classes } = this.g;
    for (const s of this.#sets[set]) {
      if (s === 0) continue;
      const p = this.#pos[s];
      if (kinds[p] === Elem.CLASS && classContains(classes[values[p]], cp)) out.push(...this.#expand(this.#push(p + 1, this.#parent[s])));
    }
    return out.length === 0 ? 0 : this.#internSet(out);
  }

  /** Whether a character starting with the pending bits could be taken by some stack (llama.cpp's partial match). */
  #partialFits(set: number, value: number, remain: number): boolean {
    if (remain < 0 || (remain === 1 && value < 2)) return false; // invalid, or an overlong 7-bit character
    let lo = value * 2 ** (remain * 6);
    const hi = lo + 2 ** (remain * 6) - 1;
    if (lo === 0) lo = remain === 2 ? 1 << 11 : remain === 3 ? 1 << 16 : lo;
    for (const s of this.#sets[set]) {
      if (s === 0) continue;
      const p = this.#pos[s];
      if (this.g.kinds[p] !== Elem.CLASS) continue;
      const c = this.g.classes[this.g.values[p]];
      let overlaps = false;
      for (let i = 0; i < c.ranges.length && !overlaps; i += 2) overlaps = c.ranges[i] <= hi && lo <= c.ranges[i + 1];
      if (overlaps !== c.negated) return true;
    }
    return false;
  }

  /** Feeds bytes; returns the new state, or undefined when the grammar cannot take them. */
  feed(state: GrammarState, bytes: Uint8Array): GrammarState | undefined {
    let { set, value, remain } = state;
    for (const b of bytes) {
      if (remain > 0) {
        if (b >> 6 !== 2) return undefined;
        value = value * 64 + (b & 0x3f);
        if (--remain > 0) continue;
      } else {
        const len = UTF8_LENGTH[b >> 4];
        if (len === 0) return undefined;
        value = b & ((1 << (8 - len)) - 1);
        remain = len - 1;
        if (remain > 0) continue;
      }
      set = this.#step(set, value);
      if (set === 0) return undefined;
    }
    return { set, value: remain > 0 ? value : 0, remain };
  }

  /** Feeds the UTF-8 bytes of `text`. */
  feedText(state: GrammarState, text: string): GrammarState | undefined {
    return this.feed(state, new TextEncoder().encode(text));
  }

  /** The state after `token`, or undefined when the grammar does not allow it. End-of-generation keeps the state. */
  next(state: GrammarState, token: number): GrammarState | undefined {
    if (this.trie.eog.has(token)) return this.#mayEnd(state.set) ? state : undefined;
    const bytes = this.trie.bytes[token];
    if (!bytes || bytes.length === 0 || bytes[0] === 0) return undefined;
    const viaTokens = this.#tokenStacks(state, token);
    let after = this.feed(state, bytes);
    if (after && after.remain !== 0 && !this.#partialFits(after.set, after.value, after.remain)) after = undefined;
    if (viaTokens.length === 0) return after;
    const set = this.#internSet(after ? [...this.#sets[after.set], ...viaTokens] : viaTokens);
    return { set, value: after?.value ?? 0, remain: after?.remain ?? 0 };
  }

  #mayEnd(set: number): boolean {
    const stacks = this.#sets[set];
    return stacks.length > 0 && stacks[0] === 0;
  }

  /** Stacks topped by a token element that `token` matches, advanced past it. */
  #tokenStacks(state: GrammarState, token: number): number[] {
    const out: number[] = [];
    if (state.remain !== 0) return out;
    for (const s of this.#sets[state.set]) {
      if (s === 0) continue;
      const p = this.#pos[s];
      const k = this.g.kinds[p];
      if ((k === Elem.TOKEN && this.g.values[p] === token) || (k === Elem.TOKEN_NOT && this.g.values[p] !== token)) {
        out.push(...this.#expand(this.#push(p + 1, this.#parent[s])));
      }
    }
    return out;
  }

  allows(state: GrammarState, token: number): boolean {
    return this.next(state, token) !== undefined;
  }

  /** Whether the text so far is a complete sentence of the grammar. */
  isComplete(state: GrammarState): boolean {
    return state.remain === 0 && this.#mayEnd(state.set);
  }

  /** Whether the text so far is complete and nothing can follow it (only end of generation is allowed). */
  isFinished(state: GrammarState): boolean {
    const stacks = this.#sets[state.set];
    return state.remain === 0 && stacks.length === 1 && stacks[0] === 0;
  }

  /** 1 for every token the grammar allows next, 0 for the rest (cached per state; do not modify). */
  mask(state: GrammarState): Uint8Array {
    const key = `${state.set}|${state.value}|${state.remain}`;
    let m = this.#masks.get(key);
    if (m) {
      this.#masks.delete(key); // most recently used last
      this.#masks.set(key, m);
      return m;
    }
    m = this.#computeMask(state);
    if (this.#masks.size >= MASK_CACHE) this.#masks.delete(this.#masks.keys().next().value!);
    this.#masks.set(key, m);
    return m;
  }

  #computeMask(state: GrammarState): Uint8Array {
    const trie = this.trie;
    const { child, sibling, byte, firstToken, nextToken } = trie;
    const m = new Uint8Array(trie.vocabSize);
    if (this.#mayEnd(state.set)) for (const id of trie.eog) m[id] = 1;
    // Depth-first over the trie, carrying the parse state each prefix reaches: (node, set, value, remain).
    const work: number[] = [];
    for (let c = child[0]; c >= 0; c = sibling[c]) work.push(c, state.set, state.value, state.remain);
    while (work.length > 0) {
      let remain = work.pop()!;
      let value = work.pop()!;
      let set = work.pop()!;
      const node = work.pop()!;
      const b = byte[node];
      if (remain > 0) {
        if (b >> 6 !== 2) continue;
        value = value * 64 + (b & 0x3f);
        remain--;
      } else {
        const len = UTF8_LENGTH[b >> 4];
        if (len === 0) continue;
        value = b & ((1 << (8 - len)) - 1);
        remain = len - 1;
      }
      if (remain === 0) {
        set = this.#step(set, value);
        if (set === 0) continue;
        value = 0;
        for (let t = firstToken[node]; t >= 0; t = nextToken[t]) m[t] = 1;
      } else if (firstToken[node] >= 0 && this.#partialFits(set, value, remain)) {
        for (let t = firstToken[node]; t >= 0; t = nextToken[t]) m[t] = 1;
      }
      for (let c = child[node]; c >= 0; c = sibling[c]) work.push(c, set, value, remain);
    }
    // Token elements match whole tokens by id.
    if (state.remain === 0) {
      for (const s of this.#sets[state.set]) {
        if (s === 0) continue;
        const p = this.#pos[s];
        const k = this.g.kinds[p];
        const usable = (id: number) => id < trie.vocabSize && !trie.eog.has(id) && trie.bytes[id].length > 0 && trie.bytes[id][0] !== 0;
        if (k === Elem.TOKEN) {
          if (usable(this.g.values[p])) m[this.g.values[p]] = 1;
        } else if (k === Elem.TOKEN_NOT) {
          for (let id = 0; id < trie.vocabSize; id++) if (id !== this.g.values[p] && usable(id)) m[id] = 1;
        }
      }
    }
    return m;
  }
}

function uniqueSorted(ids: ArrayLike<number>): Int32Array {
  const a = Int32Array.from(ids).sort();
  if (a.length <= 1) return a;
  let n = 1;
  for (let i = 1; i < a.length; i++) if (a[i] !== a[n - 1]) a[n++] = a[i];
  return a.subarray(0, n);
}
