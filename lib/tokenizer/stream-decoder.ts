// Incremental detokenization: turns tokens into text one at a time, holding back incomplete UTF-8 characters.
import { invalidArgument } from '../errors.js';
import { tokenText } from './token-text.js';
import { TokenType, type Vocab } from './vocab.js';

export interface DecodeOptions {
  /** Render control tokens (e.g. '<s>') as their text. Default false: they render as ''. */
  special?: boolean;
  /**
   * The tokens start the sequence, so the space the encoder's add_space_prefix put before the first word is removed
   * (as SentencePiece does). Default true. Pass false when decoding a continuation, e.g. generated tokens after a prompt.
   */
  atStart?: boolean;
}

const utf8 = new TextEncoder();

export function checkDecodeOptions(options: unknown): Required<DecodeOptions> {
  if (options === undefined) return { special: false, atStart: true };
  if (options === null || typeof options !== 'object') throw invalidArgument('decode options', 'an object or undefined', options);
  const { special = false, atStart = true } = options as DecodeOptions;
  if (typeof special !== 'boolean') throw invalidArgument('special', 'a boolean', special);
  if (typeof atStart !== 'boolean') throw invalidArgument('atStart', 'a boolean', atStart);
  return { special, atStart };
}

export function checkTokenId(vocab: Vocab, id: unknown): number {
  if (typeof id !== 'number' || !vocab.isValidId(id)) {
    throw invalidArgument('token', `an integer token id from 0 to ${vocab.size - 1}`, id);
  }
  return id;
}

export class StreamDecoder {
  readonly #vocab: Vocab;
  readonly #special: boolean;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #byte = new Uint8Array(1);
  #stripSpace: boolean;

  constructor(vocab: Vocab, options?: DecodeOptions) {
    const o = checkDecodeOptions(options);
    this.#vocab = vocab;
    this.#special = o.special;
    this.#stripSpace = o.atStart && vocab.addSpacePrefix;
  }

  /** Adds one token; returns the text it completes (possibly ''), never part of a character. */
  push(token: number): string {
    const id = checkTokenId(this.#vocab, token);
    const byte = this.#vocab.byteOf(id);
    if (byte >= 0) {
      this.#stripSpace = false;
      this.#byte[0] = byte;
      return this.#decoder.decode(this.#byte, { stream: true });
    }
    let text = tokenText(this.#vocab, id, this.#special);
    if (this.#stripSpace && this.#vocab.type(id) !== TokenType.control) {
      this.#stripSpace = false;
      if (text.startsWith(' ')) text = text.slice(1);
    }
    return text.length === 0 ? '' : this.#decoder.decode(utf8.encode(text), { stream: true });
  }

  /** Ends the stream: returns any held-back bytes, an incomplete character becoming U+FFFD. */
  flush(): string {
    return this.#decoder.decode();
  }
}
