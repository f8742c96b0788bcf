// An independent GBNF recognizer for the tests: memoized recursive descent over the syntax tree (the set of end
// positions each node can reach from each start position), nothing shared with the library's pushdown automaton but
// the parser. Also a random sentence generator over the same tree.
import type { GbnfAst, GbnfNode } from '../../lib/grammar/gbnf.js';

export class Recognizer {
  readonly #ast: GbnfAst;
  #cps: number[] = [];
  #memo = new Map<string, Set<number>>();
  /** Prefix mode: running out of input inside a terminal counts as reaching the end. */
  #prefix = false;

  constructor(ast: GbnfAst) {
    this.#ast = ast;
  }

  /** Whether `text` is a sentence of rule `root`. */
  accepts(text: string, root = 'root'): boolean {
    return this.#run(text, root, false);
  }

  /** Whether some sentence of rule `root` starts with `text`. */
  isPrefix(text: string, root = 'root'): boolean {
    return this.#run(text, root, true);
  }

  #run(text: string, root: string, prefix: boolean): boolean {
    this.#cps = [...text].map((c) => c.codePointAt(0)!);
    this.#memo.clear();
    this.#prefix = prefix;
    return this.#rule(root, 0).has(this.#cps.length);
  }

  #rule(name: string, i: number): Set<number> {
    const key = `${name}@${i}`;
    const known = this.#memo.get(key);
    if (known) return known;
    this.#memo.set(key, new Set()); // left recursion would see nothing (the library refuses it anyway)
    const out = this.#node(this.#ast.rules.get(name)!, i);
    this.#memo.set(key, out);
    return out;
  }

  #node(n: GbnfNode, i: number): Set<number> {
    const cps = this.#cps;
    switch (n.kind) {
      case 'literal': {
        for (let k = 0; k < n.cps.length; k++) {
          if (this.#prefix && i + k === cps.length) return new Set([cps.length]);
          if (cps[i + k] !== n.cps[k]) return new Set();
        }
        return new Set([i + n.cps.length]);
      }
      case 'class': {
        if (i >= cps.length) return this.#prefix ? new Set([cps.length]) : new Set();
        let inside = false;
        for (let k = 0; k < n.ranges.length; k += 2) if (cps[i] >= n.ranges[k] && cps[i] <= n.ranges[k + 1]) inside = true;
        return inside !== n.negated ? new Set([i + 1]) : new Set();
      }
      case 'any':
        return i < cps.length || this.#prefix ? new Set([Math.min(i + 1, cps.length)]) : new Set();
      case 'ref':
        return this.#rule(n.name, i);
      case 'token':
        return new Set(); // plain text never matches a token element
      case 'alt': {
        const out = new Set<number>();
        for (const a of n.alts) for (const e of this.#node(a, i)) out.add(e);
        return out;
      }
      case 'seq': {
        let cur = new Set([i]);
        for (const item of n.items) {
          const next = new Set<number>();
          for (const p of cur) for (const e of this.#node(item, p)) next.add(e);
          cur = next;
          if (cur.size === 0) break;
        }
        return cur;
      }
      case 'repeat': {
        const out = new Set<number>();
        let cur = new Set([i]);
        for (let count = 0; ; count++) {
          if (count >= n.min) for (const p of cur) out.add(p);
          if (count >= n.max || cur.size === 0) break;
          const next = new Set<number>();
          for (const p of cur) for (const e of this.#node(n.item, p)) next.add(e);
          // From the minimum on, a position already reached (with at least as many repetitions left) adds nothing
          // new; an item that can match empty text would otherwise loop.
          if (count + 1 >= n.min) for (const p of [...next]) if (out.has(p)) next.delete(p);
          cur = next;
        }
        return out;
      }
    }
  }
}

/** A random sentence of `root` (bounded depth; undefined when the bound is hit). `rand` in [0, 1). */
export function randomSentence(ast: GbnfAst, rand: () => number, root = 'root', maxDepth = 40): string | undefined {
  const pick = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const gen = (n: GbnfNode, depth: number): string | undefined => {
    if (depth > maxDepth) return undefined;
    switch (n.kind) {
      case 'literal':
        return String.fromCodePoint(...n.cps);
      case 'class': {
        if (n.negated) {
          // printable ASCII outside the listed ranges
          for (let tries = 0; tries < 200; tries++) {
            const cp = pick(32, 126);
            let inside = false;
            for (let k = 0; k < n.ranges.length; k += 2) if (cp >= n.ranges[k] && cp <= n.ranges[k + 1]) inside = true;
            if (!inside) return String.fromCodePoint(cp);
          }
          return undefined;
        }
        const r = pick(0, n.ranges.length / 2 - 1);
        return String.fromCodePoint(pick(n.ranges[2 * r], Math.min(n.ranges[2 * r + 1], n.ranges[2 * r] + 5000)));
      }
      case 'any':
        return String.fromCodePoint(pick(32, 126));
      case 'ref':
        return gen(ast.rules.get(n.name)!, depth + 1);
      case 'token':
        return undefined;
      case 'alt':
        return gen(n.alts[pick(0, n.alts.length - 1)], depth + 1);
      case 'seq': {
        let s = '';
        for (const item of n.items) {
          const part = gen(item, depth + 1);
          if (part === undefined) return undefined;
          s += part;
        }
        return s;
      }
      case 'repeat': {
        const max = n.max === Infinity ? n.min + 3 : n.max;
        const count = pick(n.min, Math.min(max, n.min + 4));
        let s = '';
        for (let k = 0; k < count; k++) {
          const part = gen(n.item, depth + 1);
          if (part === undefined) return undefined;
          s += part;
        }
        return s;
      }
    }
  };
  return gen(ast.rules.get(root)!, 0);
}
