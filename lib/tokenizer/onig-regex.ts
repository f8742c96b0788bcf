// Translates the regular expressions of tokenizer definitions (written for Oniguruma, the engine of Hugging Face
// `tokenizers`, with its Ruby syntax; a few come from tiktoken's Rust engine) into JavaScript RegExps with the same
// meaning on the same text.
//
// What differs between the engines and how each is carried over:
// - \s, \S: Unicode White_Space in Oniguruma (includes U+0085, excludes U+FEFF); JS \s differs on both -> \p{White_Space}.
// - \d, \w, \b: Unicode-aware in Oniguruma; ASCII-only in JS -> \p{Nd}, [\p{L}\p{M}\p{N}\p{Pc}], lookarounds.
// - (?i:...) and (?i): JS (V8 in Node 20) has no inline modifiers -> letters become [xX] classes (with the simple case
//   folds that matter: s/ſ, k/K).
// - possessive quantifiers (X++, X?+, X*+) and atomic groups (?>X) -> (?=(?<name>X))\k<name>, the standard emulation.
// - class intersection [A&&B] and nested classes [a[bc]] -> the JS `v` flag's [[A]&&[B]] syntax.
// - \p{Han} and other script names -> \p{Script=Han}.
// - '.', '^', '$' are line-based in Oniguruma's Ruby syntax (line = '\n' only) -> [^\n], (?<![^\n]), (?![^\n]).
// - \A, \z, \Z -> lookarounds on the whole input.
// Capturing groups become non-capturing (the splitter only needs match bounds) unless the pattern has backreferences.
import { AglmError } from '../errors.js';

type ClassItem =
  | { kind: 'char'; cp: number }
  | { kind: 'range'; lo: number; hi: number }
  | { kind: 'prop'; text: string }
  | { kind: 'class'; node: ClassNode };

interface ClassNode {
  negate: boolean;
  /** Operands of `&&` (one when there is no intersection); each operand is a union of items. */
  operands: ClassItem[][];
  ci: boolean;
}

type Atom =
  | { kind: 'char'; cp: number; ci: boolean }
  | { kind: 'class'; node: ClassNode }
  | { kind: 'raw'; text: string }
  | { kind: 'group'; open: string; body: Alt; atomic: boolean };

interface Quantified {
  atom: Atom;
  quant: string;
  possessive: boolean;
}

type Alt = Quantified[][];

/** Oniguruma's Unicode \\w: Letter | Mark | Number | Connector_Punctuation. */
const WORD_CLASS = '[\\p{L}\\p{M}\\p{N}\\p{Pc}]';
const NOT_WORD_CLASS = '[^\\p{L}\\p{M}\\p{N}\\p{Pc}]';
const WORD_PROPS = ['\\p{L}', '\\p{M}', '\\p{N}', '\\p{Pc}'];

/** General categories (and their long names) that JS accepts as bare \p{X}; anything else is taken as a script name. */
const GENERAL_CATEGORIES = new Set(
  (
    'L LC Lu Ll Lt Lm Lo M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn ' +
    'Letter Cased_Letter Uppercase_Letter Lowercase_Letter Titlecase_Letter Modifier_Letter Other_Letter Mark ' +
    'Nonspacing_Mark Spacing_Mark Enclosing_Mark Number Decimal_Number Letter_Number Other_Number Punctuation ' +
    'Connector_Punctuation Dash_Punctuation Open_Punctuation Close_Punctuation Initial_Punctuation Final_Punctuation ' +
    'Other_Punctuation Symbol Math_Symbol Currency_Symbol Modifier_Symbol Other_Symbol Separator Space_Separator ' +
    'Line_Separator Paragraph_Separator Other Control Format Surrogate Private_Use Unassigned ' +
    'Alphabetic White_Space Uppercase Lowercase Any ASCII Emoji Emoji_Presentation Extended_Pictographic'
  ).split(' '),
);

/** Case variants Oniguruma's simple case folding adds beyond toLowerCase/toUpperCase. */
const EXTRA_FOLDS: Record<string, string[]> = { s: ['\u017f'], k: ['\u212a'], 'å': ['\u212b'] };

function unsupported(src: string, why: string): AglmError {
  return new AglmError('UNSUPPORTED_TOKENIZER', `The pre-tokenizer regex ${JSON.stringify(src)} is not supported: ${why}`);
}

class Parser {
  readonly src: string;
  pos = 0;
  ci = false;
  hasBackrefs: boolean;

  constructor(src: string) {
    this.src = src;
    this.hasBackrefs = /\\[1-9]/.test(src.replace(/\\\\/g, ''));
  }

  peek(offset = 0): string {
    return this.src[this.pos + offset] ?? '';
  }

  /** One code point at the current position. */
  nextCodePoint(): number {
    const cp = this.src.codePointAt(this.pos);
    if (cp === undefined) throw unsupported(this.src, 'unexpected end');
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  parseAlt(): Alt {
    const saved = this.ci;
    const alt: Alt = [this.parseSeq()];
    while (this.peek() === '|') {
      this.pos++;
      alt.push(this.parseSeq());
    }
    this.ci = saved;
    return alt;
  }

  parseSeq(): Quantified[] {
    const seq: Quantified[] = [];
    while (this.pos < this.src.length && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.parseAtom();
      if (atom === undefined) continue; // a flag switch such as (?i)
      seq.push(this.parseQuantifier(atom));
    }
    return seq;
  }

  parseQuantifier(atom: Atom): Quantified {
    let quant = '';
    const c = this.peek();
    if (c === '?' || c === '*' || c === '+') {
      quant = c;
      this.pos++;
    } else if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.src.slice(this.pos));
      if (m !== null && (m[1] !== '' || m[3] !== '')) {
        quant = `{${m[1] === '' ? '0' : m[1]}${m[2]}${m[3]}}`;
        this.pos += m[0].length;
      }
    }
    if (quant === '') return { atom, quant, possessive: false };
    if (this.peek() === '?') {
      this.pos++;
      return { atom, quant: quant + '?', possessive: false };
    }
    if (this.peek() === '+') {
      this.pos++;
      if (quant.startsWith('{')) {
        // In Ruby syntax an interval followed by '+' repeats the interval; it is not possessive.
        const repeated: Atom = { kind: 'group', open: '(?:', body: [[{ atom, quant, possessive: false }]], atomic: false };
        return { atom: repeated, quant: '+', possessive: false };
      }
      return { atom, quant, possessive: true };
    }
    return { atom, quant, possessive: false };
  }

  parseAtom(): Atom | undefined {
    const c = this.peek();
    switch (c) {
      case '(':
        return this.parseGroup();
      case '[':
        this.pos++;
        return { kind: 'class', node: this.parseClass() };
      case '\\':
        return this.parseEscape();
      case '.':
        this.pos++;
        return { kind: 'raw', text: '[^\\n]' };
      case '^':
        this.pos++;
        return { kind: 'raw', text: '(?<![^\\n])' };
      case '$':
        this.pos++;
        return { kind: 'raw', text: '(?![^\\n])' };
      default:
        return { kind: 'char', cp: this.nextCodePoint(), ci: this.ci };
    }
  }

  parseGroup(): Atom | undefined {
    this.pos++; // '('
    let open = '(?:';
    let atomic = false;
    if (this.peek() === '?') {
      const rest = this.src.slice(this.pos + 1);
      const flags = /^(-?[imx]+(?:-[imx]+)?)([:)])/.exec(rest);
      if (rest.startsWith(':')) this.pos += 2;
      else if (rest.startsWith('=') || rest.startsWith('!')) {
        open = '(?' + rest[0];
        this.pos += 2;
      } else if (rest.startsWith('<=') || rest.startsWith('<!')) {
        open = '(?' + rest.slice(0, 2);
        this.pos += 3;
      } else if (rest.startsWith('>')) {
        atomic = true;
        this.pos += 2;
      } else if (/^<[A-Za-z_]\w*>/.test(rest) || /^'[A-Za-z_]\w*'/.test(rest)) {
        this.pos += 1 + rest.indexOf(rest[0] === '<' ? '>' : "'", 1) + 1; // named group: kept as non-capturing
      } else if (flags !== null) {
        const [on, off = ''] = flags[1].split('-');
        if (/[mx]/.test(on + off)) throw unsupported(this.src, `inline flags (?${flags[1]}) other than i`);
        const ci = on.includes('i') ? true : off.includes('i') ? false : this.ci;
        this.pos += 1 + flags[0].length;
        if (flags[2] === ')') {
          this.ci = ci; // (?i): applies to the rest of the enclosing group, restored by parseAlt
          return undefined;
        }
        const saved = this.ci;
        this.ci = ci;
        const body = this.parseAlt();
        this.ci = saved;
        this.expect(')');
        return { kind: 'group', open: '(?:', body, atomic: false };
      } else {
        throw unsupported(this.src, `the group syntax at offset ${this.pos - 1}`);
      }
    } else if (this.hasBackrefs) {
      open = '(';
    }
    const body = this.parseAlt();
    this.expect(')');
    return { kind: 'group', open, body, atomic };
  }

  expect(ch: string): void {
    if (this.peek() !== ch) throw unsupported(this.src, `expected '${ch}' at offset ${this.pos}`);
    this.pos++;
  }

  parseEscape(): Atom {
    this.pos++; // '\'
    const c = this.peek();
    this.pos++;
    switch (c) {
      case 'p':
      case 'P':
        return { kind: 'raw', text: this.parseProperty(c === 'P') };
      case 's':
        return { kind: 'raw', text: '\\p{White_Space}' };
      case 'S':
        return { kind: 'raw', text: '\\P{White_Space}' };
      case 'd':
        return { kind: 'raw', text: '\\p{Nd}' };
      case 'D':
        return { kind: 'raw', text: '\\P{Nd}' };
      case 'w':
        return { kind: 'raw', text: WORD_CLASS };
      case 'W':
        return { kind: 'raw', text: NOT_WORD_CLASS };
      case 'h':
        return { kind: 'raw', text: '[0-9A-Fa-f]' };
      case 'H':
        return { kind: 'raw', text: '[^0-9A-Fa-f]' };
      case 'b':
        return { kind: 'raw', text: `(?:(?<=${WORD_CLASS})(?!${WORD_CLASS})|(?<!${WORD_CLASS})(?=${WORD_CLASS}))` };
      case 'B':
        return { kind: 'raw', text: `(?:(?<=${WORD_CLASS})(?=${WORD_CLASS})|(?<!${WORD_CLASS})(?!${WORD_CLASS}))` };
      case 'A':
        return { kind: 'raw', text: '(?<![\\s\\S])' };
      case 'z':
        return { kind: 'raw', text: '(?![\\s\\S])' };
      case 'Z':
        return { kind: 'raw', text: '(?=\\n?(?![\\s\\S]))' };
      default: {
        if (/[1-9]/.test(c)) {
          let digits = c;
          while (/[0-9]/.test(this.peek())) digits += this.src[this.pos++];
          return { kind: 'raw', text: `\\${digits}` };
        }
        this.pos--;
        return { kind: 'char', cp: this.parseEscapedChar(), ci: this.ci };
      }
    }
  }

  /** After '\' (already consumed), one escaped character in or out of a class; `pos` is at the escape letter. */
  parseEscapedChar(): number {
    const c = this.peek();
    this.pos++;
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, a: 7, e: 27, '0': 0 };
    if (c in simple) return simple[c];
    if (c === 'x') {
      const m = /^\{([0-9A-Fa-f]{1,8})\}|^([0-9A-Fa-f]{1,2})/.exec(this.src.slice(this.pos));
      if (m === null) throw unsupported(this.src, 'a malformed \\x escape');
      this.pos += m[0].length;
      return parseInt(m[1] ?? m[2], 16);
    }
    if (c === 'u') {
      const m = /^[0-9A-Fa-f]{4}/.exec(this.src.slice(this.pos));
      if (m === null) throw unsupported(this.src, 'a malformed \\u escape');
      this.pos += 4;
      return parseInt(m[0], 16);
    }
    if (/[A-Za-z0-9]/.test(c)) throw unsupported(this.src, `the escape \\${c}`);
    this.pos--;
    return this.nextCodePoint();
  }

  parseProperty(negated: boolean): string {
    const m = /^\{(\^?)([A-Za-z_][A-Za-z0-9_]*)\}/.exec(this.src.slice(this.pos));
    if (m === null) throw unsupported(this.src, `a malformed \\p escape at offset ${this.pos}`);
    this.pos += m[0].length;
    const name = m[2];
    const neg = negated !== (m[1] === '^');
    const js = GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
    const text = `\\${neg ? 'P' : 'p'}{${js}}`;
    try {
      new RegExp(text, 'u');
    } catch {
      throw unsupported(this.src, `the Unicode property \\p{${name}}`);
    }
    return text;
  }

  /** After '[': the class up to and including its ']'. */
  parseClass(): ClassNode {
    const node: ClassNode = { negate: false, operands: [[]], ci: this.ci };
    if (this.peek() === '^') {
      node.negate = true;
      this.pos++;
    }
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === '') throw unsupported(this.src, 'an unterminated character class');
      if (c === ']' && !first) {
        this.pos++;
        return node;
      }
      first = false;
      const items = node.operands[node.operands.length - 1];
      if (c === '&' && this.peek(1) === '&') {
        this.pos += 2;
        node.operands.push([]);
        continue;
      }
      if (c === '[') {
        if (this.peek(1) === ':') throw unsupported(this.src, 'POSIX bracket expressions');
        this.pos++;
        items.push({ kind: 'class', node: this.parseClass() });
        continue;
      }
      let lo: number;
      if (c === '\\') {
        this.pos++;
        const e = this.peek();
        const props = this.classEscape(e);
        if (props !== undefined) {
          this.pos++;
          items.push(...props);
          continue;
        }
        lo = e === 'b' ? (this.pos++, 8) : this.parseEscapedChar();
      } else {
        lo = this.nextCodePoint();
      }
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== '') {
        this.pos++;
        let hi: number;
        if (this.peek() === '\\') {
          this.pos++;
          hi = this.parseEscapedChar();
        } else {
          hi = this.nextCodePoint();
        }
        if (hi < lo) throw unsupported(this.src, 'a reversed class range');
        items.push({ kind: 'range', lo, hi });
      } else {
        items.push({ kind: 'char', cp: lo });
      }
    }
  }

  /** Items for a class escape such as \s or \p{L} inside a class; undefined for a character escape. */
  classEscape(e: string): ClassItem[] | undefined {
    switch (e) {
      case 's':
        return [{ kind: 'prop', text: '\\p{White_Space}' }];
      case 'S':
        return [{ kind: 'prop', text: '\\P{White_Space}' }];
      case 'd':
        return [{ kind: 'prop', text: '\\p{Nd}' }];
      case 'D':
        return [{ kind: 'prop', text: '\\P{Nd}' }];
      case 'w':
        return WORD_PROPS.map((text) => ({ kind: 'prop', text }) as const);
      case 'W':
        return [{ kind: 'class', node: { negate: true, operands: [WORD_PROPS.map((text) => ({ kind: 'prop', text }) as const)], ci: false } }];
      case 'h':
        return [{ kind: 'range', lo: 0x30, hi: 0x39 }, { kind: 'range', lo: 0x41, hi: 0x46 }, { kind: 'range', lo: 0x61, hi: 0x66 }];
      case 'p':
      case 'P': {
        this.pos++;
        const text = this.parseProperty(e === 'P');
        this.pos--; // the caller steps over one character
        return [{ kind: 'prop', text }];
      }
      default:
        return undefined;
    }
  }
}

/** The case variants of a code point under Oniguruma-like simple case folding (itself included). */
function caseVariants(cp: number): number[] {
  const ch = String.fromCodePoint(cp);
  const out = new Set<number>([cp]);
  for (const v of [ch.toLowerCase(), ch.toUpperCase(), ...(EXTRA_FOLDS[ch.toLowerCase()] ?? [])]) {
    if ([...v].length === 1) out.add(v.codePointAt(0)!);
  }
  for (const [base, extra] of Object.entries(EXTRA_FOLDS)) {
    if (extra.includes(ch)) for (const v of [base, base.toUpperCase()]) out.add(v.codePointAt(0)!);
  }
  return [...out];
}

const SYNTAX_CHARS = new Set('^$\\.*+?()[]{}|/');
/** Characters escaped inside a `v`-mode class: class syntax characters and the reserved double punctuators. */
const V_CLASS_ESCAPED = new Set('()[]{}/-\\|&!#%,:;<=>@`~^$*+.?');
const U_CLASS_ESCAPED = new Set('\\]^-[');

function hexEscape(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function emitChar(cp: number): string {
  const ch = String.fromCodePoint(cp);
  if (cp < 0x20 || cp >= 0x7f) return hexEscape(cp);
  return SYNTAX_CHARS.has(ch) ? '\\' + ch : ch;
}

function emitClassChar(cp: number, v: boolean): string {
  const ch = String.fromCodePoint(cp);
  if (cp < 0x20 || cp >= 0x7f) return hexEscape(cp);
  return (v ? V_CLASS_ESCAPED : U_CLASS_ESCAPED).has(ch) ? '\\' + ch : ch;
}

class Emitter {
  readonly v: boolean;
  #atomic = 0;

  constructor(v: boolean) {
    this.v = v;
  }

  alt(alt: Alt): string {
    return alt.map((seq) => seq.map((q) => this.quantified(q)).join('')).join('|');
  }

  quantified(q: Quantified): string {
    const inner = this.atom(q.atom) + q.quant;
    if (!q.possessive) return inner;
    return this.atomicWrap(inner);
  }

  atomicWrap(inner: string): string {
    const name = `aglmAtomic${this.#atomic++}`;
    return `(?=(?<${name}>${inner}))\\k<${name}>`;
  }

  atom(a: Atom): string {
    switch (a.kind) {
      case 'raw':
        return a.text;
      case 'char': {
        if (!a.ci) return emitChar(a.cp);
        const vs = caseVariants(a.cp);
        return vs.length === 1 ? emitChar(a.cp) : '[' + vs.map((cp) => emitClassChar(cp, this.v)).join('') + ']';
      }
      case 'class':
        return this.cls(a.node);
      case 'group': {
        const body = this.alt(a.body);
        return a.atomic ? this.atomicWrap(`(?:${body})`) : `${a.open}${body})`;
      }
    }
  }

  cls(node: ClassNode): string {
    const operands = node.operands.map((items) => items.map((it) => this.classItem(it, node.ci)).join(''));
    const neg = node.negate ? '^' : '';
    if (operands.length === 1) return `[${neg}${operands[0]}]`;
    return `[${neg}${operands.map((o) => `[${o}]`).join('&&')}]`;
  }

  classItem(it: ClassItem, ci: boolean): string {
    switch (it.kind) {
      case 'prop':
        return it.text;
      case 'class':
        return this.cls(it.node);
      case 'char':
        return (ci ? caseVariants(it.cp) : [it.cp]).map((cp) => emitClassChar(cp, this.v)).join('');
      case 'range': {
        let s = `${emitClassChar(it.lo, this.v)}-${emitClassChar(it.hi, this.v)}`;
        if (ci && it.hi - it.lo <= 1024) {
          const extra = new Set<number>();
          for (let cp = it.lo; cp <= it.hi; cp++) for (const v of caseVariants(cp)) if (v < it.lo || v > it.hi) extra.add(v);
          for (const cp of extra) s += emitClassChar(cp, this.v);
        }
        return s;
      }
    }
  }
}

function needsV(alt: Alt): boolean {
  const clsNeeds = (n: ClassNode): boolean =>
    n.operands.length > 1 || n.operands.some((items) => items.some((it) => it.kind === 'class'));
  const atomNeeds = (a: Atom): boolean => (a.kind === 'class' ? clsNeeds(a.node) : a.kind === 'group' ? needsV(a.body) : false);
  return alt.some((seq) => seq.some((q) => atomNeeds(q.atom)));
}

/** The JS source and flags ('u' or 'v') with the meaning of an Oniguruma pattern. */
export function translateOnigRegex(src: string): { source: string; flags: 'u' | 'v' } {
  const p = new Parser(src);
  const alt = p.parseAlt();
  if (p.pos !== src.length) throw unsupported(src, `unbalanced ')' at offset ${p.pos}`);
  const v = needsV(alt);
  return { source: new Emitter(v).alt(alt), flags: v ? 'v' : 'u' };
}

const compiled = new Map<string, RegExp>();

/** A global RegExp for an Oniguruma pattern (cached; callers reset lastIndex before use). */
export function onigRegExp(src: string): RegExp {
  let re = compiled.get(src);
  if (re === undefined) {
    const { source, flags } = translateOnigRegex(src);
    try {
      re = new RegExp(source, 'g' + flags);
    } catch (e) {
      throw unsupported(src, `its translation ${JSON.stringify(source)} does not compile (${(e as Error).message})`);
    }
    compiled.set(src, re);
  }
  return re;
}

/** A regex that matches `text` literally (for Split patterns given as a plain string). */
export function literalRegExp(text: string): RegExp {
  return new RegExp([...text].map((ch) => emitChar(ch.codePointAt(0)!)).join(''), 'gu');
}
