// The public tokenizer: text <-> token ids for a GGUF vocabulary (SentencePiece, byte-level BPE, WordPiece) or a
// Hugging Face tokenizer.json.
import { AglmError, invalidArgument } from '../errors.js';
import { SpmEncoder } from './encoders.js';
import { tokenizerFromGguf } from './gguf-loaders.js';
import type { TokenizerFamily, TokenizerParts } from './parts.js';
import { SpaceMarkRenderer } from './renderers.js';
import { SpecialTokenMatcher, type Fragment } from './special-tokens.js';
import { checkTokenId, decodeTokens, StreamDecoder, type DecodeOptions } from './stream-decoder.js';
import { tokenizerFromJson, type TokenizerJsonOptions } from './tokenizer-json.js';
import { TokenType, Vocab, type VocabMetadata } from './vocab.js';

export interface EncodeOptions {
  /**
   * Add the vocabulary's special tokens, as llama.cpp's `add_special` (llama_tokenize) does. true (the default): BOS
   * first, EOS and SEP last, each where the vocabulary's flag says so (add_bos_token, add_eos_token, add_sep_token;
   * BERT: [CLS] first and [SEP] last). false: none of them.
   *
   * `addBos`, `addEos` and `addSep`, where given, override what `addSpecial` implies for their one token:
   * `{ addSpecial: false, addBos: true }` adds BOS only; `{ addBos: false }` drops BOS and keeps EOS/SEP as the
   * vocabulary says.
   */
  addSpecial?: boolean;
  /** Put the BOS token first (BERT: [CLS]). Default: the vocabulary's add_bos_token flag, or false with `addSpecial: false`. */
  addBos?: boolean;
  /** Put the EOS token last. Default: the vocabulary's add_eos_token flag, or false with `addSpecial: false`. */
  addEos?: boolean;
  /**
   * Put the SEP token last, after EOS (BERT: [SEP]). Default: the vocabulary's add_sep_token flag (true for 'bert'),
   * or false with `addSpecial: false`.
   */
  addSep?: boolean;
  /**
   * Turn the text of control tokens (e.g. '<s>', '<|im_start|>') into their ids, dropping the whitespace around them
   * that their lstrip/rstrip say. Default false: such text is tokenized as plain text, whitespace and all (llama.cpp's
   * parse_special). User-defined tokens (tokenizers' non-special added tokens) are always matched. In a GGUF
   * vocabulary, which tokens are control is what llama.cpp makes of the file (Phi-3's '</s>' is; see Vocab).
   */
  special?: boolean;
  /**
   * With `special`: [start, end) UTF-16 ranges of `text` where control-token text stays plain text, as without
   * `special` (for example the user's messages inside a rendered chat template). Sorted and not overlapping.
   */
  plainRanges?: readonly (readonly [number, number])[];
}

export class Tokenizer {
  readonly vocab: Vocab;
  readonly vocabSize: number;
  /** 'spm' (SentencePiece BPE), 'bpe' (BPE over merges, byte-level or raw text) or 'wordpiece'. */
  readonly family: TokenizerFamily;
  /** The GGUF pre-tokenizer name (tokenizer.ggml.pre) of a BPE vocabulary loaded from GGUF. */
  readonly preTokenizer: string | undefined;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly unk: number | undefined;
  readonly sep: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSep: boolean;
  readonly #parts: TokenizerParts;
  #alwaysMatcher: SpecialTokenMatcher | undefined;
  #specialMatcher: SpecialTokenMatcher | undefined;

  /** A tokenizer over `vocab`; without `parts`, `vocab` must be a SentencePiece ('llama') vocabulary. */
  constructor(vocab: Vocab, parts?: TokenizerParts) {
    if (parts === undefined) {
      if (vocab.model !== 'llama') {
        throw new AglmError(
          'UNSUPPORTED_TOKENIZER',
          `The tokenizer model "${vocab.model}" needs more than a vocabulary (use Tokenizer.fromGguf or Tokenizer.fromTokenizerJson)`,
        );
      }
      parts = { family: 'spm', encoder: new SpmEncoder(vocab), renderer: new SpaceMarkRenderer(vocab) };
    }
    this.vocab = vocab;
    this.vocabSize = vocab.size;
    this.family = parts.family;
    this.preTokenizer = parts.preTokenizer;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.unk = vocab.unk;
    this.sep = vocab.sep;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    this.addSep = vocab.addSep;
    this.#parts = parts;
  }

  /**
   * Builds the tokenizer from GGUF metadata. tokenizer.ggml.model 'llama' -> SentencePiece BPE, 'gpt2' -> BPE with the
   * pre-tokenizer named by tokenizer.ggml.pre, 'bert' -> WordPiece; anything else, or an unknown pre-tokenizer name,
   * throws UNSUPPORTED_TOKENIZER.
   */
  static fromGguf(metadata: VocabMetadata): Tokenizer {
    const { vocab, parts } = tokenizerFromGguf(metadata);
    return new Tokenizer(vocab, parts);
  }

  /**
   * Builds the tokenizer from a Hugging Face tokenizer.json (its text or parsed object): BPE (byte-level, or
   * SentencePiece-style with byte fallback) or WordPiece, with its normalizer and pre-tokenizer. `options` names the
   * BOS/EOS tokens and flags that live in tokenizer_config.json rather than tokenizer.json.
   */
  static fromTokenizerJson(json: string | object, options?: TokenizerJsonOptions): Tokenizer {
    const { vocab, parts } = tokenizerFromJson(json, options);
    return new Tokenizer(vocab, parts);
  }

  encode(text: string, options?: EncodeOptions): Uint32Array {
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    const o = this.#encodeOptions(options);
    const out: number[] = [];
    if (o.addBos && this.bos !== undefined) out.push(this.bos);
    const matcher = o.special ? this.#allSpecials() : this.#alwaysSpecials();
    const plain = o.special ? checkRanges(options?.plainRanges, text.length) : undefined;
    let fragments: Fragment[] = matcher.isEmpty ? [{ text }] : matcher.split(text, plain);
    // User-defined tokens are matched everywhere, plain ranges too.
    const always = this.#alwaysSpecials();
    if (plain !== undefined && plain.length > 0 && !always.isEmpty) {
      fragments = fragments.flatMap((f) => ('id' in f ? [f] : always.split(f.text)));
    }
    const encoder = this.#parts.encoder;
    for (let i = 0; i < fragments.length; i++) {
      const f = fragments[i];
      if ('id' in f) out.push(f.id);
      else if (f.text.length > 0) encoder.encode(f.text, i === 0, out);
    }
    if (o.addEos && this.eos !== undefined) out.push(this.eos);
    if (o.addSep && this.sep !== undefined) out.push(this.sep);
    return Uint32Array.from(out);
  }

  decode(tokens: ArrayLike<number>, options?: DecodeOptions): string {
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') {
      throw invalidArgument('tokens', 'an array of token ids', tokens);
    }
    return decodeTokens(this.#parts.renderer, tokens, options);
  }

  /**
   * The raw bytes a token stands for: byte tokens their byte, byte-level BPE pieces their bytes, SentencePiece pieces
   * their text with '▁' as a space, WordPiece pieces their text (a space before a word-initial piece); special tokens
   * their own text.
   */
  tokenBytes(id: number): Uint8Array {
    checkTokenId(this.vocab, id);
    return Uint8Array.from(this.#parts.renderer.bytes(id, true));
  }

  /** End of generation: EOS, EOT, EOM and known end-of-turn control tokens. */
  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  isControl(id: number): boolean {
    return this.vocab.isValidId(id) && this.vocab.type(id) === TokenType.control;
  }

  createStreamDecoder(options?: DecodeOptions): StreamDecoder {
    return new StreamDecoder(this.#parts.renderer, options);
  }

  #encodeOptions(options: unknown): { addBos: boolean; addEos: boolean; addSep: boolean; special: boolean } {
    if (options === undefined) return { addBos: this.addBos, addEos: this.addEos, addSep: this.addSep, special: false };
    if (options === null || typeof options !== 'object') {
      throw invalidArgument('encode options', 'an object or undefined', options);
    }
    const o = options as EncodeOptions;
    const flag = (name: string, value: unknown, fallback: boolean): boolean => {
      if (value === undefined) return fallback;
      if (typeof value !== 'boolean') throw invalidArgument(name, 'a boolean', value);
      return value;
    };
    const addSpecial = flag('addSpecial', o.addSpecial, true);
    return {
      addBos: flag('addBos', o.addBos, addSpecial && this.addBos),
      addEos: flag('addEos', o.addEos, addSpecial && this.addEos),
      addSep: flag('addSep', o.addSep, addSpecial && this.addSep),
      special: flag('special', o.special, false),
    };
  }

  #alwaysSpecials(): SpecialTokenMatcher {
    this.#alwaysMatcher ??= new SpecialTokenMatcher(
      this.vocab,
      [TokenType.userDefined],
      this.#parts.specialAttrs,
      this.#parts.asciiStrip === true,
    );
    return this.#alwaysMatcher;
  }

  #allSpecials(): SpecialTokenMatcher {
    this.#specialMatcher ??= new SpecialTokenMatcher(
      this.vocab,
      [TokenType.control, TokenType.userDefined, TokenType.unknown],
      this.#parts.specialAttrs,
      this.#parts.asciiStrip === true,
    );
    return this.#specialMatcher;
  }
}

/** Checks the plainRanges option: sorted, non-overlapping [start, end) pairs inside the text. */
function checkRanges(ranges: unknown, length: number): readonly (readonly [number, number])[] | undefined {
  if (ranges === undefined) return undefined;
  const expected = `sorted, non-overlapping [start, end] pairs of offsets from 0 to ${length}`;
  if (!Array.isArray(ranges)) throw invalidArgument('plainRanges', expected, ranges);
  let last = 0;
  for (const r of ranges) {
    const ok = Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]);
    if (!ok || r[0] < last || r[1] < r[0] || r[1] > length) throw invalidArgument('plainRanges', expected, ranges);
    last = r[1];
  }
  return ranges as readonly (readonly [number, number])[];
}
