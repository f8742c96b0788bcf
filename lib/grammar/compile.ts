// A GBNF syntax tree lowered to the flat rule table the matcher walks: every rule a list of alternatives, each a
// run of elements ending in END; groups become rules of their own, repetitions become rule chains (S{m,n}: S m times,
// then n-m nested optional copies; S{m,}: S m times, then a right-recursive rule), literals one class per character.
// Refuses left recursion (the matcher would expand it forever) and unresolvable tokens.
import { AglmError } from '../errors.js';
import type { GbnfAst, GbnfNode } from './gbnf.js';

export const enum Elem {
  END = 0,
  REF = 1,
  CLASS = 2,
  TOKEN = 3,
  TOKEN_NOT = 4,
}

/** A character class: sorted, merged inclusive ranges; `negated` flips membership. ASCII membership is precomputed. */
export interface CharClass {
  ranges: Uint32Array;
  negated: boolean;
  ascii: Uint8Array;
}

export interface CompiledGrammar {
  /** Element kinds (Elem) and values (rule index, class index or token id), alternatives laid end to end. */
  kinds: Uint8Array;
  values: Int32Array;
  /** Per rule, the start positions of its alternatives. */
  alts: Int32Array[];
  classes: CharClass[];
  ruleNames: string[];
  root: number;
}

/** How `<text>` tokens resolve to ids (the vocabulary the grammar is used with). */
export type TokenResolver = (text: string) => number | undefined;

export function classContains(c: CharClass, cp: number): boolean {
  if (cp < 128) return c.ascii[cp] === 1;
  const r = c.ranges;
  let found = false;
  for (let i = 0; i < r.length; i += 2) {
    if (cp < r[i]) break;
    if (cp <= r[i + 1]) {
      found = true;
      break;
    }
  }
  return found !== c.negated;
}

function makeClass(raw: number[], negated: boolean): CharClass {
  const pairs: [number, number][] = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [lo, hi] of pairs) {
    const n = merged.length;
    if (n > 0 && lo <= merged[n - 1] + 1) merged[n - 1] = Math.max(merged[n - 1], hi);
    else merged.push(lo, hi);
  }
  const ranges = Uint32Array.from(merged);
  const c: CharClass = { ranges, negated, ascii: new Uint8Array(128) };
  for (let cp = 0; cp < 128; cp++) {
    let inside = false;
    for (let i = 0; i < ranges.length; i += 2) if (cp >= ranges[i] && cp <= ranges[i + 1]) inside = true;
    c.ascii[cp] = inside !== negated ? 1 : 0;
  }
  return c;
}

type Item = { kind: Elem; value: number };

export function compileGrammar(ast: GbnfAst, root: string, resolveToken?: TokenResolver): CompiledGrammar {
  if (!ast.rules.has(root)) throw new AglmError('INVALID_GRAMMAR', `GBNF: the grammar has no "${root}" rule`);
  const ruleIndex = new Map<string, number>();
  const ruleNames: string[] = [];
  const bodies: Item[][][] = [];
  for (const name of ast.rules.keys()) {
    ruleIndex.set(name, ruleNames.length);
    ruleNames.push(name);
    bodies.push([]);
  }
  const classes: CharClass[] = [];
  const classIndex = new Map<string, number>();
  const classItem = (ranges: number[], negated: boolean): Item => {
    const key = (negated ? '^' : '') + ranges.join(',');
    let i = classIndex.get(key);
    if (i === undefined) {
      i = classes.length;
      classes.push(makeClass(ranges, negated));
      classIndex.set(key, i);
    }
    return { kind: Elem.CLASS, value: i };
  };
  const newRule = (base: string, alternatives: Item[][]): number => {
    const i = ruleNames.length;
    ruleNames.push(`${base}-${i}`);
    bodies.push(alternatives);
    return i;
  };

  // The items of one node inside a sequence of rule `base`.
  const lower = (node: GbnfNode, base: string): Item[] => {
    switch (node.kind) {
      case 'literal':
        return node.cps.map((cp) => classItem([cp, cp], false));
      case 'class':
        return [classItem(node.ranges, node.negated)];
      case 'any':
        return [classItem([0, 0x10ffff], false)];
      case 'ref':
        return [{ kind: Elem.REF, value: ruleIndex.get(node.name)! }];
      case 'token': {
        let id = node.id;
        if (id === undefined) {
          id = resolveToken?.(node.text!);
          if (id === undefined) {
            throw new AglmError('INVALID_GRAMMAR', `GBNF: the token ${node.text} is not one token of this vocabulary`);
          }
        }
        return [{ kind: node.negated ? Elem.TOKEN_NOT : Elem.TOKEN, value: id }];
      }
      case 'seq':
      case 'alt':
        return [{ kind: Elem.REF, value: newRule(base, lowerAlternatives(node, base)) }];
      case 'repeat': {
        const s = lower(node.item, base);
        const out: Item[] = [];
        for (let i = 0; i < node.min; i++) out.push(...s);
        if (node.max === Infinity) {
          const r = newRule(base, []);
          bodies[r].push([...s, { kind: Elem.REF, value: r }], []);
          out.push({ kind: Elem.REF, value: r });
        } else if (node.max > node.min) {
          let next = -1;
          for (let i = node.max - node.min; i > 0; i--) {
            next = newRule(base, [next < 0 ? s : [...s, { kind: Elem.REF, value: next }], []]);
          }
          out.push({ kind: Elem.REF, value: next });
        }
        return out;
      }
    }
  };
  const lowerAlternatives = (node: GbnfNode, base: string): Item[][] => {
    const alts = node.kind === 'alt' ? node.alts : [node];
    return alts.map((a) => (a.kind === 'seq' ? a.items.flatMap((n) => lower(n, base)) : lower(a, base)));
  };
  for (const [name, body] of ast.rules) bodies[ruleIndex.get(name)!] = lowerAlternatives(body, name);

  let size = 0;
  for (const b of bodies) for (const alt of b) size += alt.length + 1;
  const kinds = new Uint8Array(size);
  const values = new Int32Array(size);
  const alts: Int32Array[] = [];
  let p = 0;
  for (const b of bodies) {
    const starts = new Int32Array(b.length);
    b.forEach((alt, i) => {
      starts[i] = p;
      for (const it of alt) {
        kinds[p] = it.kind;
        values[p++] = it.value;
      }
      kinds[p++] = Elem.END;
    });
    alts.push(starts);
  }
  const g: CompiledGrammar = { kinds, values, alts, classes, ruleNames, root: ruleIndex.get(root)! };
  checkLeftRecursion(g);
  return g;
}

/** INVALID_GRAMMAR when a rule can reach itself without consuming input first. */
function checkLeftRecursion(g: CompiledGrammar): void {
  const n = g.alts.length;
  // Which rules can match the empty string (fixed point).
  const nullable = new Uint8Array(n);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (nullable[r]) continue;
      for (const start of g.alts[r]) {
        let p = start;
        while (g.kinds[p] === Elem.REF && nullable[g.values[p]]) p++;
        if (g.kinds[p] === Elem.END) {
          nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  // Edges r -> s where s can come first in r; a cycle is left recursion.
  const state = new Uint8Array(n); // 0 new, 1 on the path, 2 done
  const visit = (r: number, path: number[]): void => {
    if (state[r] === 2) return;
    if (state[r] === 1) {
      const cycle = path.slice(path.indexOf(r)).concat(r).map((i) => g.ruleNames[i]);
      throw new AglmError('INVALID_GRAMMAR', `GBNF: left recursion (${cycle.join(' -> ')}): a rule reaches itself before matching any character`);
    }
    state[r] = 1;
    path.push(r);
    for (const start of g.alts[r]) {
      for (let p = start; g.kinds[p] === Elem.REF; p++) {
        visit(g.values[p], path);
        if (!nullable[g.values[p]]) break;
      }
    }
    path.pop();
    state[r] = 2;
  };
  for (let r = 0; r < n; r++) visit(r, []);
}
