// GBNF text (llama.cpp's grammar format, grammars/README.md there) parsed into a syntax tree: rules of alternatives,
// sequences, literals, character classes, `.`, rule references, tokens (`<[id]>`, `<text>`, `!<...>`) and repetitions
// (`*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`). Errors are INVALID_GRAMMAR with the line and column.
import { AglmError } from '../errors.js';

export type GbnfNode =
  | { kind: 'seq'; items: GbnfNode[] }
  | { kind: 'alt'; alts: GbnfNode[] }
  /** A literal string: its code points in order. */
  | { kind: 'literal'; cps: number[] }
  /** `[...]`: inclusive code point ranges as [lo0, hi0, lo1, hi1, ...]; `negated` for `[^...]`. */
  | { kind: 'class'; ranges: number[]; negated: boolean }
  /** `.`: any one code point. */
  | { kind: 'any' }
  | { kind: 'ref'; name: string }
  /** `<[id]>` (id) or `<text>` (text, resolved against a vocabulary when bound); `!` negates. */
  | { kind: 'token'; id?: number; text?: string; negated: boolean }
  /** item{min,max}; max Infinity when unbounded. */
  | { kind: 'repeat'; item: GbnfNode; min: number; max: number };

export interface GbnfAst {
  /** Rule name -> its definition, in the order the text defines them. */
  rules: Map<string, GbnfNode>;
}

/** llama.cpp's bound: a repetition count above it is an error (minimum) or unbounded (maximum). */
export const MAX_REPETITIONS = 2000;

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isWordChar = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '-' || isDigit(c);

class Parser {
  pos = 0;
  readonly rules = new Map<string, GbnfNode>();
  constructor(readonly src: string) {}

  fail(message: string, at = this.pos): never {
    const before = this.src.slice(0, at);
    const line = before.split('\n').length;
    const col = at - before.lastIndexOf('\n');
    const near = this.src.slice(at, at + 24).replace(/\n/g, '\\n');
    throw new AglmError('INVALID_GRAMMAR', `GBNF: ${message} at line ${line}, column ${col}${near ? ` (near "${near}")` : ' (end of input)'}`);
  }

  peek(offset = 0): string {
    return this.src[this.pos + offset] ?? '';
  }

  /** Skips spaces, tabs and comments; newlines too when `newlines`. */
  space(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || (newlines && (c === '\r' || c === '\n'))) this.pos++;
      else if (c === '#') while (this.pos < this.src.length && this.peek() !== '\r' && this.peek() !== '\n') this.pos++;
      else return;
    }
  }

  name(): string {
    const start = this.pos;
    while (isWordChar(this.peek())) this.pos++;
    if (this.pos === start) this.fail('expected a rule name');
    return this.src.slice(start, this.pos);
  }

  int(): number {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos === start) this.fail('expected an integer');
    return Number(this.src.slice(start, this.pos));
  }

  hex(digits: number): number {
    const text = this.src.slice(this.pos, this.pos + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(text)) this.fail(`expected ${digits} hex digits`);
    this.pos += digits;
    const v = parseInt(text, 16);
    if (v > 0x10ffff) this.fail('a code point above U+10FFFF', this.pos - digits);
    return v;
  }

  /** One character of a literal or class, escapes included; returns its code point. */
  char(): number {
    const c = this.peek();
    if (c === '') this.fail('unexpected end of input');
    if (c === '\\') {
      const e = this.peek(1);
      this.pos += 2;
      switch (e) {
        case 'x': return this.hex(2);
        case 'u': return this.hex(4);
        case 'U': return this.hex(8);
        case 't': return 9;
        case 'r': return 13;
        case 'n': return 10;
        case '\\': case '"': case '[': case ']': case '-':
          return e.charCodeAt(0);
        default:
          this.fail(`unknown escape "\\${e}"`, this.pos - 2);
      }
    }
    const cp = this.src.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  alternates(nested: boolean): GbnfNode {
    const alts = [this.sequence(nested)];
    while (this.peek() === '|') {
      this.pos++;
      this.space(true);
      alts.push(this.sequence(nested));
    }
    return alts.length === 1 ? alts[0] : { kind: 'alt', alts };
  }

  sequence(nested: boolean): GbnfNode {
    const items: GbnfNode[] = [];
    const repeat = (min: number, max: number, at: number): void => {
      const last = items.pop();
      if (!last) this.fail('a repetition with nothing before it', at);
      items.push({ kind: 'repeat', item: last, min, max });
    };
    for (;;) {
      const c = this.peek();
      const at = this.pos;
      if (c === '"') {
        this.pos++;
        const cps: number[] = [];
        while (this.peek() !== '"') cps.push(this.char());
        this.pos++;
        items.push({ kind: 'literal', cps });
      } else if (c === '[') {
        this.pos++;
        let negated = false;
        if (this.peek() === '^') {
          negated = true;
          this.pos++;
        }
        const ranges: number[] = [];
        while (this.peek() !== ']') {
          const lo = this.char();
          let hi = lo;
          if (this.peek() === '-' && this.peek(1) !== ']') {
            this.pos++;
            hi = this.char();
            if (hi < lo) this.fail('a character range whose end comes before its start', at);
          }
          ranges.push(lo, hi);
        }
        this.pos++;
        items.push({ kind: 'class', ranges, negated });
      } else if (c === '<' || (c === '!' && this.peek(1) === '<')) {
        const negated = c === '!';
        this.pos += negated ? 2 : 1;
        if (this.peek() === '[') {
          this.pos++;
          const id = this.int();
          if (this.peek() !== ']' || this.peek(1) !== '>') this.fail('expected "]>" after a token id');
          this.pos += 2;
          items.push({ kind: 'token', id, negated });
        } else {
          const end = this.src.indexOf('>', this.pos);
          if (end < 0) this.fail('expected ">" to end a token');
          items.push({ kind: 'token', text: '<' + this.src.slice(this.pos, end + 1), negated });
          this.pos = end + 1;
        }
      } else if (isWordChar(c)) {
        items.push({ kind: 'ref', name: this.name() });
      } else if (c === '(') {
        this.pos++;
        this.space(true);
        const group = this.alternates(true);
        if (this.peek() !== ')') this.fail('expected ")"');
        this.pos++;
        items.push(group.kind === 'seq' || group.kind === 'alt' ? group : { kind: 'seq', items: [group] });
      } else if (c === '.') {
        this.pos++;
        items.push({ kind: 'any' });
      } else if (c === '*' || c === '+' || c === '?') {
        this.pos++;
        repeat(c === '+' ? 1 : 0, c === '?' ? 1 : Infinity, at);
      } else if (c === '{') {
        this.pos++;
        this.space(nested);
        if (!isDigit(this.peek())) this.fail('expected an integer');
        const min = this.int();
        this.space(nested);
        let max = min;
        if (this.peek() === ',') {
          this.pos++;
          this.space(nested);
          max = isDigit(this.peek()) ? this.int() : Infinity;
          this.space(nested);
        }
        if (this.peek() !== '}') this.fail('expected "}"');
        this.pos++;
        if (min > MAX_REPETITIONS) this.fail(`a repetition of more than ${MAX_REPETITIONS}`, at);
        if (max < min) this.fail('a repetition whose maximum is below its minimum', at);
        repeat(min, max > MAX_REPETITIONS ? Infinity : max, at);
      } else {
        break;
      }
      this.space(nested);
    }
    return items.length === 1 ? items[0] : { kind: 'seq', items };
  }

  rule(): void {
    const at = this.pos;
    const name = this.name();
    this.space(false);
    if (!this.src.startsWith('::=', this.pos)) this.fail('expected "::="');
    this.pos += 3;
    this.space(true);
    const body = this.alternates(false);
    if (this.peek() === '\r') this.pos += this.peek(1) === '\n' ? 2 : 1;
    else if (this.peek() === '\n') this.pos++;
    else if (this.pos < this.src.length) this.fail('expected the end of the line');
    if (this.rules.has(name)) this.fail(`rule "${name}" is defined twice`, at);
    this.rules.set(name, body);
    this.space(true);
  }

  parse(): GbnfAst {
    this.space(true);
    while (this.pos < this.src.length) this.rule();
    const check = (node: GbnfNode): void => {
      switch (node.kind) {
        case 'ref':
          if (!this.rules.has(node.name)) throw new AglmError('INVALID_GRAMMAR', `GBNF: rule "${node.name}" is used but not defined`);
          break;
        case 'seq':
          node.items.forEach(check);
          break;
        case 'alt':
          node.alts.forEach(check);
          break;
        case 'repeat':
          check(node.item);
          break;
      }
    };
    for (const body of this.rules.values()) check(body);
    return { rules: this.rules };
  }
}

/** Parses GBNF text; INVALID_GRAMMAR with the place for anything llama.cpp's parser would refuse (and duplicate rules). */
export function parseGbnf(text: string): GbnfAst {
  return new Parser(text).parse();
}

/** A GBNF literal for a string: quotes, with `"`, `\` and control characters escaped. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}
