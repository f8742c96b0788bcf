// WordPiece ('bert' tokenizer model): BERT's normalizer and basic tokenizer, then greedy longest-match-first pieces.
//
// GGUF files (as llama.cpp's converter writes them) mark word-initial pieces with a leading '▁' and store continuation
// pieces bare ('##ing' -> 'ing'); tokenizer.json stores word-initial pieces bare and continuations with '##'. Both are
// read into the same two tables here.
import { TokenType, type Vocab } from './vocab.js';

export interface BertNormalizerOptions {
  /** Drop NUL, U+FFFD and control/format characters; turn whitespace into ' '. */
  cleanText: boolean;
  /** Put spaces around CJK ideographs so each is a word. */
  handleChineseChars: boolean;
  /** NFD, then drop nonspacing marks. */
  stripAccents: boolean;
  lowercase: boolean;
}

/** CJK ideograph blocks as BERT defines them (the range 0x2B920 start follows the reference implementation). */
export function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const WHITE_SPACE = /^\p{White_Space}$/u;
const OTHER = /^\p{C}$/u; // Cc, Cf, Cs, Co, Cn
const NONSPACING_MARK = /\p{Mn}/gu;
const NON_ASCII = /[^\0-\x7f]/;
const PUNCTUATION = /^\p{P}$/u;

function isBertWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || WHITE_SPACE.test(ch);
}

function isBertControl(ch: string): boolean {
  return ch !== '\t' && ch !== '\n' && ch !== '\r' && OTHER.test(ch);
}

/** ASCII punctuation and symbols (BERT splits on all of them), or a Unicode punctuation character. */
export function isBertPunctuation(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return PUNCTUATION.test(ch);
}

// What BERT's normalizer and basic tokenizer ask of a code point, as bits: computed once per BMP code point (the
// Unicode property regexes above are the definition; the table only saves running them per character).
const KNOWN = 1;
const WHITESPACE = 2;
const CONTROL = 4;
const PUNCT = 8;
const CJK = 16;
const bmpFlags = new Uint8Array(0x10000);

function computeFlags(cp: number): number {
  const ch = String.fromCodePoint(cp);
  return (
    KNOWN |
    (isBertWhitespace(ch) ? WHITESPACE : 0) |
    (isBertControl(ch) ? CONTROL : 0) |
    (isBertPunctuation(ch) ? PUNCT : 0) |
    (isCjkIdeograph(cp) ? CJK : 0)
  );
}

function charFlags(cp: number): number {
  if (cp > 0xffff) return computeFlags(cp);
  let f = bmpFlags[cp];
  if (f === 0) bmpFlags[cp] = f = computeFlags(cp);
  return f;
}

/** Lowercases one character at a time (no context rules such as the final sigma). */
export function lowercaseChars(s: string): string {
  // Final_Sigma (capital sigma U+03A3 -> U+03C2 at the end of a word) is the only context rule of
  // String.prototype.toLowerCase, so the text between capital sigmas lowercases as its characters do one by one.
  return s.includes('\u03a3') ? s.split('\u03a3').map((part) => part.toLowerCase()).join('\u03c3') : s.toLowerCase();
}

/** NFD, then nonspacing marks removed. */
export function stripAccents(s: string): string {
  if (!NON_ASCII.test(s)) return s;
  return s.normalize('NFD').replace(NONSPACING_MARK, '');
}

/** cleanText and handleChineseChars: copies the runs of characters that stay as they are, one slice each. */
function cleanText(s: string, clean: boolean, chinese: boolean): string {
  let out = '';
  let run = 0;
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    const n = cp > 0xffff ? 2 : 1;
    const f = cp < 0x7f && cp > 0x20 ? KNOWN : charFlags(cp);
    let rep: string | undefined;
    if (clean && (cp === 0 || cp === 0xfffd || f & CONTROL)) rep = '';
    else if (clean && f & WHITESPACE) rep = cp === 0x20 ? undefined : ' ';
    else if (chinese && f & CJK) rep = ` ${s.slice(i, i + n)} `;
    if (rep !== undefined) {
      out += s.slice(run, i) + rep;
      run = i + n;
    }
    i += n;
  }
  return run === 0 ? s : out + s.slice(run);
}

export function bertNormalize(text: string, o: BertNormalizerOptions): string {
  let s = text;
  if (o.cleanText || o.handleChineseChars) s = cleanText(s, o.cleanText, o.handleChineseChars);
  if (o.stripAccents) s = stripAccents(s);
  if (o.lowercase) s = lowercaseChars(s);
  return s;
}

/** BERT's basic tokenizer: split on whitespace (dropped), every punctuation character its own word. */
export function bertPreTokenize(text: string, out: string[]): void {
  let word = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const n = cp > 0xffff ? 2 : 1;
    const f = charFlags(cp);
    if (f & WHITESPACE) {
      if (word < i) out.push(text.slice(word, i));
      word = i + n;
    } else if (f & PUNCT) {
      if (word < i) out.push(text.slice(word, i));
      out.push(text.slice(i, i + n));
      word = i + n;
    }
    i += n;
  }
  if (word < text.length) out.push(text.slice(word));
}

/** How the vocabulary writes its pieces. */
export type WordPieceConvention =
  /** GGUF: '▁word' starts a word, 'ing' continues one. */
  | { kind: 'space-mark' }
  /** tokenizer.json: 'word' starts a word, '##ing' continues one (the prefix is configurable). */
  | { kind: 'prefix'; prefix: string };

const CACHE_LIMIT = 100_000;
const CACHE_WORD_LIMIT = 128;

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (!(isLowSurrogate(s.charCodeAt(i)) && i > 0 && isHighSurrogate(s.charCodeAt(i - 1)))) n++;
  return n;
}

export class WordPieceModel {
  readonly vocab: Vocab;
  readonly unk: number | undefined;
  readonly maxInputChars: number;
  /** Word-initial pieces (text without its marker) -> id. */
  readonly #initial = new Map<string, number>();
  /** Continuation pieces (text without its marker) -> id. */
  readonly #continuation = new Map<string, number>();
  /** Per id: 1 when the piece starts a word. */
  readonly #startsWord: Uint8Array;
  /** Per id: the piece's text without its marker. */
  readonly #surface: string[];
  /** The longest piece, in UTF-16 units. */
  readonly #maxPieceUnits: number;
  /** Words already encoded -> their ids. */
  readonly #cache = new Map<string, number[]>();

  constructor(vocab: Vocab, convention: WordPieceConvention, unk: number | undefined, maxInputChars = 100) {
    this.vocab = vocab;
    this.unk = unk;
    this.maxInputChars = maxInputChars;
    this.#startsWord = new Uint8Array(vocab.size);
    this.#surface = new Array<string>(vocab.size);
    let maxUnits = 1;
    for (let id = vocab.size - 1; id >= 0; id--) {
      const piece = vocab.piece(id);
      const type = vocab.type(id);
      let initial: boolean;
      let text: string;
      if (convention.kind === 'space-mark') {
        initial = piece.startsWith('\u2581');
        text = initial ? piece.slice(1) : piece;
      } else {
        initial = !(convention.prefix !== '' && piece.startsWith(convention.prefix) && piece.length > convention.prefix.length);
        text = initial ? piece : piece.slice(convention.prefix.length);
      }
      this.#startsWord[id] = initial ? 1 : 0;
      this.#surface[id] = text;
      if (type !== TokenType.normal && type !== TokenType.userDefined) continue;
      if (text === '') continue;
      (initial ? this.#initial : this.#continuation).set(text, id); // lowest id wins
      maxUnits = Math.max(maxUnits, text.length);
    }
    this.#maxPieceUnits = maxUnits;
  }

  /** The text a token shows when decoded, and whether it starts a new word (a space goes before it). */
  surface(id: number): { text: string; startsWord: boolean } {
    return { text: this.#surface[id], startsWord: this.#startsWord[id] === 1 };
  }

  /** Appends the pieces of one word (greedy longest match first); the unknown token if any part has no piece. */
  encodeWord(word: string, out: number[]): void {
    const cached = this.#cache.get(word);
    if (cached !== undefined) {
      for (let i = 0; i < cached.length; i++) out.push(cached[i]);
      return;
    }
    const start = out.length;
    this.#encodeUncached(word, out);
    if (word.length <= CACHE_WORD_LIMIT) {
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(word, out.slice(start));
    }
  }

  /** Candidate pieces are slices of the word at code point boundaries, longest (in UTF-16 units) first. */
  #encodeUncached(word: string, out: number[]): void {
    if (word.length > this.maxInputChars && codePointCount(word) > this.maxInputChars) {
      this.#pushUnk(out);
      return;
    }
    const start = out.length;
    let i = 0;
    while (i < word.length) {
      const table = i === 0 ? this.#initial : this.#continuation;
      let found = -1;
      let end = Math.min(word.length, i + this.#maxPieceUnits);
      for (; end > i; end--) {
        if (end < word.length && isLowSurrogate(word.charCodeAt(end)) && isHighSurrogate(word.charCodeAt(end - 1))) continue;
        const id = table.get(word.slice(i, end));
        if (id !== undefined) {
          found = id;
          break;
        }
      }
      if (found < 0) {
        out.length = start;
        this.#pushUnk(out);
        return;
      }
      out.push(found);
      i = end;
    }
  }

  #pushUnk(out: number[]): void {
    if (this.unk !== undefined) out.push(this.unk);
  }
}
