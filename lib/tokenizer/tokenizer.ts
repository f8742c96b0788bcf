// The public tokenizer: text <-> token ids for a GGUF vocabulary, built from the file's tokenizer.ggml.* metadata.
import { AglmError, invalidArgument } from '../errors.js';
import { SpecialTokenMatcher, type Fragment } from './special-tokens.js';
import { encodeSpm } from './spm.js';
import { checkTokenId, StreamDecoder, type DecodeOptions } from './stream-decoder.js';
import { tokenText } from './token-text.js';
import { TokenType, Vocab, type VocabMetadata } from './vocab.js';

export interface EncodeOptions {
  /** Put the BOS token first. Default: the vocabulary's add_bos_token flag (true for 'llama'). */
  addBos?: boolean;
  /** Put the EOS token last. Default: the vocabulary's add_eos_token flag (false for 'llama'). */
  addEos?: boolean;
  /** Turn the text of special tokens (e.g. '<s>') into their ids. Default false: such text is tokenized as plain text. */
  special?: boolean;
}

const SUPPORTED_MODELS = ['llama'];
const utf8 = new TextEncoder();

function checkModel(model: string): void {
  if (!SUPPORTED_MODELS.includes(model)) {
    throw new AglmError('UNSUPPORTED_TOKENIZER', `The tokenizer model "${model}" is not supported (supported: ${SUPPORTED_MODELS.join(', ')})`);
  }
}

export class Tokenizer {
  readonly vocab: Vocab;
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly unk: number | undefined;
  readonly addBos: boolean;
  #matcher: SpecialTokenMatcher | undefined;

  constructor(vocab: Vocab) {
    checkModel(vocab.model);
    this.vocab = vocab;
    this.vocabSize = vocab.size;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.unk = vocab.unk;
    this.addBos = vocab.addBos;
  }

  /** Builds the tokenizer from GGUF metadata; throws UNSUPPORTED_TOKENIZER for models other than 'llama'. */
  static fromGguf(metadata: VocabMetadata): Tokenizer {
    checkModel(metadata.getString('tokenizer.ggml.model'));
    return new Tokenizer(Vocab.fromMetadata(metadata));
  }

  encode(text: string, options?: EncodeOptions): Uint32Array {
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    const o = this.#encodeOptions(options);
    const out: number[] = [];
    if (o.addBos && this.bos !== undefined) out.push(this.bos);
    const fragments: Fragment[] = o.special ? this.#specialMatcher().split(text) : [{ text }];
    // As llama.cpp does, every text run gets the space prefix: each one starts the input or follows a special token.
    for (const f of fragments) {
      if ('id' in f) out.push(f.id);
      else encodeSpm(this.vocab, f.text, this.vocab.addSpacePrefix, out);
    }
    if (o.addEos && this.eos !== undefined) out.push(this.eos);
    return Uint32Array.from(out);
  }

  decode(tokens: ArrayLike<number>, options?: DecodeOptions): string {
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') {
      throw invalidArgument('tokens', 'an array of token ids', tokens);
    }
    const d = new StreamDecoder(this.vocab, options);
    let text = '';
    for (let i = 0; i < tokens.length; i++) text += d.push(tokens[i]);
    return text + d.flush();
  }

  /** The raw bytes a token stands for: one byte for byte tokens, else its text ('▁' as a space; special tokens' own text). */
  tokenBytes(id: number): Uint8Array {
    checkTokenId(this.vocab, id);
    const byte = this.vocab.byteOf(id);
    return byte >= 0 ? Uint8Array.of(byte) : utf8.encode(tokenText(this.vocab, id, true));
  }

  /** End of generation: EOS, EOT, EOM and known end-of-turn control tokens. */
  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  isControl(id: number): boolean {
    return this.vocab.isValidId(id) && this.vocab.type(id) === TokenType.control;
  }

  createStreamDecoder(options?: DecodeOptions): StreamDecoder {
    return new StreamDecoder(this.vocab, options);
  }

  #encodeOptions(options: unknown): Required<EncodeOptions> {
    if (options === undefined) return { addBos: this.addBos, addEos: this.vocab.addEos, special: false };
    if (options === null || typeof options !== 'object') {
      throw invalidArgument('encode options', 'an object or undefined', options);
    }
    const { addBos = this.addBos, addEos = this.vocab.addEos, special = false } = options as EncodeOptions;
    if (typeof addBos !== 'boolean') throw invalidArgument('addBos', 'a boolean', addBos);
    if (typeof addEos !== 'boolean') throw invalidArgument('addEos', 'a boolean', addEos);
    if (typeof special !== 'boolean') throw invalidArgument('special', 'a boolean', special);
    return { addBos, addEos, special };
  }

  #specialMatcher(): SpecialTokenMatcher {
    this.#matcher ??= new SpecialTokenMatcher(this.vocab);
    return this.#matcher;
  }
}
