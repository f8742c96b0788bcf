// Incremental detokenization: turns tokens into text one at a time, holding back incomplete UTF-8 characters.
import { invalidArgument } from '../errors.js';
import { SpaceMarkRenderer, type TokenRenderer } from './renderers.js';
import { Vocab } from './vocab.js';

export interface DecodeOptions {
  /** Render control tokens (e.g. '<s>') as their text. Default false: they render as ''. */
  special?: boolean;
  /**
   * The tokens start the sequence, so the space the encoder put before the first word (SentencePiece's
   * add_space_prefix, WordPiece's word separator) is removed. Default true. Pass false when decoding a continuation,
   * e.g. generated tokens after a prompt.
   */
  atStart?: boolean;
}

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

/** Tracks whether the first text token's leading space is still to be removed. */
class LeadingSpace {
  #pending: boolean;

  constructor(renderer: TokenRenderer, atStart: boolean) {
    this.#pending = atStart && renderer.stripsLeadingSpace;
  }

  apply(renderer: TokenRenderer, id: number, bytes: Uint8Array): Uint8Array {
    if (!this.#pending || renderer.passesLeadingSpace(id, bytes)) return bytes;
    this.#pending = false;
    return renderer.canStripSpace(id) && bytes.length > 0 && bytes[0] === 0x20 ? bytes.subarray(1) : bytes;
  }
}

export class StreamDecoder {
  readonly #renderer: TokenRenderer;
  readonly #special: boolean;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #space: LeadingSpace;

  /** `source`: a tokenizer's renderer, or a SentencePiece vocabulary. */
  constructor(source: TokenRenderer | Vocab, options?: DecodeOptions) {
    const o = checkDecodeOptions(options);
    this.#renderer = source instanceof Vocab ? new SpaceMarkRenderer(source) : source;
    this.#special = o.special;
    this.#space = new LeadingSpace(this.#renderer, o.atStart);
  }

  /** Adds one token; returns the text it completes (possibly ''), never part of a character. */
  push(token: number): string {
    const id = checkTokenId(this.#renderer.vocab, token);
    const bytes = this.#space.apply(this.#renderer, id, this.#renderer.bytes(id, this.#special));
    return bytes.length === 0 ? '' : this.#decoder.decode(bytes, { stream: true });
  }

  /** Ends the stream: returns any held-back bytes, an incomplete character becoming U+FFFD. */
  flush(): string {
    return this.#decoder.decode();
  }
}

/** Decodes a whole sequence at once (the same text as pushing every token through a StreamDecoder and flushing). */
export function decodeTokens(renderer: TokenRenderer, tokens: ArrayLike<number>, options?: DecodeOptions): string {
  const o = checkDecodeOptions(options);
  const space = new LeadingSpace(renderer, o.atStart);
  let buf = new Uint8Array(Math.max(16, tokens.length * 4));
  let n = 0;
  for (let i = 0; i < tokens.length; i++) {
    const id = checkTokenId(renderer.vocab, tokens[i]);
    const bytes = space.apply(renderer, id, renderer.bytes(id, o.special));
    if (n + bytes.length > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, n + bytes.length));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(bytes, n);
    n += bytes.length;
  }
  return new TextDecoder('utf-8').decode(buf.subarray(0, n));
}
