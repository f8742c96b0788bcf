// How each tokenizer family turns one token back into bytes of UTF-8 text.
import { byteLevelPieceBytes } from './byte-level.js';
import { tokenText } from './token-text.js';
import { TokenType, type Vocab } from './vocab.js';
import type { WordPieceModel } from './wordpiece.js';

export interface TokenRenderer {
  readonly vocab: Vocab;
  /**
   * At the start of a sequence the first text token's leading space is removed: the encoder put it there
   * (SentencePiece's add_space_prefix, WordPiece's word separator, ByteLevel's add_prefix_space).
   */
  readonly stripsLeadingSpace: boolean;
  /** The UTF-8 bytes of a token. With `special`, control tokens show their text; without, they render as nothing. */
  bytes(id: number, special: boolean): Uint8Array;
  /** False for tokens whose leading space cannot be the added one (SentencePiece byte tokens). */
  canStripSpace(id: number): boolean;
  /** True when the token leaves the leading-space removal to the next token (control tokens, shown or not). */
  passesLeadingSpace(id: number, bytes: Uint8Array): boolean;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Caches the non-special rendering of each id. */
abstract class CachedRenderer implements TokenRenderer {
  readonly vocab: Vocab;
  readonly stripsLeadingSpace: boolean;
  readonly #cache: (Uint8Array | undefined)[];

  constructor(vocab: Vocab, stripsLeadingSpace: boolean) {
    this.vocab = vocab;
    this.stripsLeadingSpace = stripsLeadingSpace;
    this.#cache = new Array(vocab.size);
  }

  bytes(id: number, special: boolean): Uint8Array {
    const type = this.vocab.type(id);
    if (type === TokenType.control || type === TokenType.unused) return special ? utf8.encode(this.vocab.piece(id)) : EMPTY;
    let b = this.#cache[id];
    if (b === undefined) {
      b = this.render(id);
      this.#cache[id] = b;
    }
    return b;
  }

  canStripSpace(_id: number): boolean {
    return true;
  }

  passesLeadingSpace(id: number, _bytes: Uint8Array): boolean {
    return this.vocab.type(id) === TokenType.control;
  }

  /** The rendering of a token that is not control or unused. */
  protected abstract render(id: number): Uint8Array;
}

/** SentencePiece and SentencePiece-style BPE: '▁' is a space, '<0xXX>' byte tokens are bytes. */
export class SpaceMarkRenderer implements TokenRenderer {
  readonly vocab: Vocab;
  readonly stripsLeadingSpace: boolean;
  readonly #cache: (Uint8Array | undefined)[];

  constructor(vocab: Vocab, stripsLeadingSpace: boolean = vocab.addSpacePrefix) {
    this.vocab = vocab;
    this.stripsLeadingSpace = stripsLeadingSpace;
    this.#cache = new Array(vocab.size);
  }

  bytes(id: number, special: boolean): Uint8Array {
    const byte = this.vocab.byteOf(id);
    if (byte >= 0) return Uint8Array.of(byte);
    const type = this.vocab.type(id);
    if (type === TokenType.control || type === TokenType.unused || type === TokenType.unknown) {
      return utf8.encode(tokenText(this.vocab, id, special));
    }
    let b = this.#cache[id];
    if (b === undefined) {
      b = utf8.encode(tokenText(this.vocab, id, false));
      this.#cache[id] = b;
    }
    return b;
  }

  canStripSpace(id: number): boolean {
    return this.vocab.byteOf(id) < 0;
  }

  passesLeadingSpace(id: number, _bytes: Uint8Array): boolean {
    return this.vocab.type(id) === TokenType.control;
  }
}

/** GPT-2 byte-level BPE: each character of a piece is one byte; added (user-defined) tokens are plain text. */
export class ByteLevelRenderer extends CachedRenderer {
  protected render(id: number): Uint8Array {
    const piece = this.vocab.piece(id);
    switch (this.vocab.type(id)) {
      case TokenType.userDefined:
      case TokenType.unknown:
        return utf8.encode(piece);
      case TokenType.byte: {
        const byte = this.vocab.byteOf(id);
        return byte >= 0 ? Uint8Array.of(byte) : utf8.encode(piece);
      }
      default:
        return byteLevelPieceBytes(piece);
    }
  }
}

/** WordPiece: a word-initial piece gets a space before it, a continuation piece joins the previous one. */
export class WordPieceRenderer extends CachedRenderer {
  readonly #model: WordPieceModel;

  constructor(model: WordPieceModel) {
    super(model.vocab, true);
    this.#model = model;
  }

  /** Special tokens are words of their own: shown (with `special`) after a space, like any other word. */
  override bytes(id: number, special: boolean): Uint8Array {
    const type = this.vocab.type(id);
    if (special && (type === TokenType.control || type === TokenType.unused)) return utf8.encode(' ' + this.vocab.piece(id));
    return super.bytes(id, special);
  }

  /** A shown special token is the first word; a hidden one leaves the space to the next word. */
  override passesLeadingSpace(_id: number, bytes: Uint8Array): boolean {
    return bytes.length === 0;
  }

  protected render(id: number): Uint8Array {
    if (this.vocab.type(id) === TokenType.userDefined) return utf8.encode(this.vocab.piece(id));
    const { text, startsWord } = this.#model.surface(id);
    return utf8.encode(startsWord ? ' ' + text : text);
  }
}
