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

/** Lowercases one character at a time (no context rules such as the final sigma). */
export function lowercaseChars(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return s.toLowerCase();
  let out = '';
  for (const ch of s) out += ch.toLowerCase();
  return out;
}

/** NFD, then nonspacing marks removed. */
export function stripAccents(s: string): string {
  return s.normalize('NFD').replace(NONSPACING_MARK, '');
}

export function bertNormalize(text: string, o: BertNormalizerOptions): string {
  let s = text;
  if (o.cleanText || o.handleChineseChars) {
    let out = '';
    for (const ch of s) {
      if (o.cleanText) {
        const c = ch.codePointAt(0)!;
        if (c === 0 || c === 0xfffd || isBertControl(ch)) continue;
        if (isBertWhitespace(ch)) {
          out += ' ';
          continue;
        }
      }
      if (o.handleChineseChars && isCjkIdeograph(ch.codePointAt(0)!)) out += ` ${ch} `;
      else out += ch;
    }
    s = out;
  }
  if (o.stripAccents) s = stripAccents(s);
  if (o.lowercase) s = lowercaseChars(s);
  return s;
}

/** BERT's basic tokenizer: split on whitespace (dropped), every punctuation character its own word. */
export function bertPreTokenize(text: string, out: string[]): void {
  let word = '';
  for (const ch of text) {
    if (isBertWhitespace(ch)) {
      if (word !== '') out.push(word);
      word = '';
    } else if (isBertPunctuation(ch)) {
      if (word !== '') out.push(word);
      out.push(ch);
      word = '';
    } else {
      word += ch;
    }
  }
  if (word !== '') out.push(word);
}

/** How the vocabulary writes its pieces. */
export type WordPieceConvention =
  /** GGUF: '▁word' starts a word, 'ing' continues one. */
  | { kind: 'space-mark' }
  /** tokenizer.json: 'word' starts a word, '##ing' continues one (the prefix is configurable). */
  | { kind: 'prefix'; prefix: string };

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
  readonly #maxPieceChars: number;

  constructor(vocab: Vocab, convention: WordPieceConvention, unk: number | undefined, maxInputChars = 100) {
    this.vocab = vocab;
    this.unk = unk;
    this.maxInputChars = maxInputChars;
    this.#startsWord = new Uint8Array(vocab.size);
    this.#surface = new Array<string>(vocab.size);
    let maxChars = 1;
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
      maxChars = Math.max(maxChars, [...text].length);
    }
    this.#maxPieceChars = maxChars;
  }

  /** The text a token shows when decoded, and whether it starts a new word (a space goes before it). */
  surface(id: number): { text: string; startsWord: boolean } {
    return { text: this.#surface[id], startsWord: this.#startsWord[id] === 1 };
  }

  /** Appends the pieces of one word (greedy longest match first); the unknown token if any part has no piece. */
  encodeWord(word: string, out: number[]): void {
    const chars = [...word];
    if (chars.length > this.maxInputChars) {
      this.#pushUnk(out);
      return;
    }
    const start = out.length;
    let i = 0;
    while (i < chars.length) {
      const table = i === 0 ? this.#initial : this.#continuation;
      let found = -1;
      let end = Math.min(chars.length, i + this.#maxPieceChars);
      for (; end > i; end--) {
        const id = table.get(chars.slice(i, end).join(''));
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
