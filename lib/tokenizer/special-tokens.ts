// Splits text on the literal text of special tokens so their ids can be emitted directly.
//
// Which tokens are looked for depends on the call: user-defined tokens (Hugging Face's non-special added tokens) are
// always split out, as llama.cpp and `tokenizers` both do; control and unknown tokens only when the caller asks for
// special-token parsing. A token may strip the whitespace on its left or right (tokenizers' lstrip/rstrip).
import { TokenType, type Vocab } from './vocab.js';

/** A run of plain text, or one special token found in the input. */
export type Fragment = { readonly text: string } | { readonly id: number };

export interface SpecialTokenAttrs {
  /** Whitespace before the token is dropped. */
  lstrip?: boolean;
  /** Whitespace after the token is dropped. */
  rstrip?: boolean;
}

interface SpecialPiece {
  readonly text: string;
  readonly id: number;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

const WHITE_SPACE = /\p{White_Space}/u;
/** C's isspace in the C locale: what llama.cpp strips. */
const ASCII_SPACE = /[ \t\n\v\f\r]/;

/** Finds special-token text in input, longest match first at each position. */
export class SpecialTokenMatcher {
  /** Special pieces grouped by first UTF-16 unit, each group longest first. */
  readonly #byFirst = new Map<number, SpecialPiece[]>();
  /** Bit per UTF-16 unit: some piece starts with it. */
  readonly #firstUnits = new Uint8Array(0x10000 / 8);
  /** What lstrip/rstrip drop. */
  readonly #space: RegExp;

  /**
   * `types`: the token types to look for (default: control, user-defined and unknown). `asciiStrip`: lstrip/rstrip
   * drop only ASCII whitespace (llama.cpp), not any Unicode White_Space (tokenizers).
   */
  constructor(
    vocab: Vocab,
    types: readonly number[] = [TokenType.control, TokenType.userDefined, TokenType.unknown],
    attrs?: ReadonlyMap<number, SpecialTokenAttrs>,
    asciiStrip = false,
  ) {
    this.#space = asciiStrip ? ASCII_SPACE : WHITE_SPACE;
    for (let id = 0; id < vocab.size; id++) {
      if (!types.includes(vocab.type(id))) continue;
      const text = vocab.piece(id);
      if (text.length === 0) continue;
      const a = attrs?.get(id);
      const first = text.charCodeAt(0);
      const group = this.#byFirst.get(first) ?? [];
      group.push({ text, id, lstrip: a?.lstrip === true, rstrip: a?.rstrip === true });
      this.#byFirst.set(first, group);
      this.#firstUnits[first >> 3] |= 1 << (first & 7);
    }
    for (const group of this.#byFirst.values()) group.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
  }

  /** True when there is nothing to look for. */
  get isEmpty(): boolean {
    return this.#byFirst.size === 0;
  }

  /** The longest special piece starting at `pos` and ending by `end`, or undefined. */
  matchAt(text: string, pos: number, end = text.length): SpecialPiece | undefined {
    const group = this.#byFirst.get(text.charCodeAt(pos));
    return group?.find((p) => pos + p.text.length <= end && text.startsWith(p.text, pos));
  }

  /**
   * Splits `text` into plain-text runs and special tokens, in order. Empty runs are dropped. No special token is
   * matched inside or across the `plain` ranges ([start, end) UTF-16 offsets, sorted, not overlapping).
   */
  split(text: string, plain: readonly (readonly [number, number])[] = []): Fragment[] {
    if (this.isEmpty) return text.length > 0 ? [{ text }] : [];
    const out: Fragment[] = [];
    const bits = this.#firstUnits;
    let runStart = 0;
    let r = 0; // the first plain range that does not end at or before pos
    for (let pos = 0; pos < text.length; ) {
      while (r < plain.length && plain[r][1] <= pos) r++;
      if (r < plain.length && plain[r][0] <= pos) {
        pos = plain[r][1];
        continue;
      }
      const c = text.charCodeAt(pos);
      const end = r < plain.length ? plain[r][0] : text.length;
      const hit = (bits[c >> 3] & (1 << (c & 7))) !== 0 ? this.matchAt(text, pos, end) : undefined;
      if (hit === undefined) {
        pos++;
        continue;
      }
      let runEnd = pos;
      const space = this.#space;
      if (hit.lstrip) while (runEnd > runStart && space.test(text[runEnd - 1])) runEnd--;
      if (runEnd > runStart) out.push({ text: text.slice(runStart, runEnd) });
      out.push({ id: hit.id });
      pos += hit.text.length;
      if (hit.rstrip) while (pos < text.length && space.test(text[pos])) pos++;
      runStart = pos;
    }
    if (runStart < text.length) out.push({ text: text.slice(runStart) });
    return out;
  }
}
