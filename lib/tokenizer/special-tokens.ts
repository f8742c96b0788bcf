// Splits text on the literal text of special tokens (control, user-defined, unknown) so their ids can be emitted directly.
import { TokenType, type Vocab } from './vocab.js';

/** A run of plain text, or one special token found in the input. */
export type Fragment = { readonly text: string } | { readonly id: number };

interface SpecialPiece {
  readonly text: string;
  readonly id: number;
}

/** Finds special-token text in input, longest match first at each position. */
export class SpecialTokenMatcher {
  /** Special pieces grouped by first UTF-16 unit, each group longest first. */
  readonly #byFirst = new Map<string, SpecialPiece[]>();

  constructor(vocab: Vocab) {
    for (let id = 0; id < vocab.size; id++) {
      const type = vocab.type(id);
      const text = vocab.piece(id);
      if (text.length === 0) continue;
      if (type !== TokenType.control && type !== TokenType.userDefined && type !== TokenType.unknown) continue;
      const group = this.#byFirst.get(text[0]) ?? [];
      group.push({ text, id });
      this.#byFirst.set(text[0], group);
    }
    for (const group of this.#byFirst.values()) group.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
  }

  /** The longest special piece starting at `pos`, or undefined. */
  matchAt(text: string, pos: number): SpecialPiece | undefined {
    const group = this.#byFirst.get(text[pos]);
    return group?.find((p) => text.startsWith(p.text, pos));
  }

  /** Splits `text` into plain-text runs and special tokens, in order. Empty runs are dropped. */
  split(text: string): Fragment[] {
    const out: Fragment[] = [];
    let runStart = 0;
    for (let pos = 0; pos < text.length; ) {
      const hit = this.#byFirst.size > 0 ? this.matchAt(text, pos) : undefined;
      if (hit === undefined) {
        pos++;
        continue;
      }
      if (pos > runStart) out.push({ text: text.slice(runStart, pos) });
      out.push({ id: hit.id });
      pos += hit.text.length;
      runStart = pos;
    }
    if (runStart < text.length) out.push({ text: text.slice(runStart) });
    return out;
  }
}
