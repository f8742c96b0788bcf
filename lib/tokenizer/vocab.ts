// The immutable vocabulary read from GGUF metadata: pieces, scores, token types, special ids and tokenizer flags.
import { AglmError } from '../errors.js';

/** Token types as GGUF stores them in tokenizer.ggml.token_type. */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** The metadata calls the vocabulary needs; a GgufMetadata from lib/gguf satisfies it. */
export interface VocabMetadata {
  getString(key: string): string;
  getStringArray(key: string): string[];
  optString(key: string): string | undefined;
  optStringArray(key: string): string[] | undefined;
  optNumber(key: string): number | undefined;
  optBoolean(key: string): boolean | undefined;
  /** A numeric array (Float32Array, Int32Array...) or undefined when the key is absent. */
  optNumberArray(key: string): ArrayLike<number> | undefined;
}

/** Control-token texts that end a turn in common chat formats; they join the end-of-generation set. */
const EOG_NAMES = ['<|eot_id|>', '<|im_end|>', '<|endoftext|>', '<|end|>', '<end_of_turn>', '<|eom_id|>'];

/** Per-model defaults for the flags when the GGUF file has no key for them (as llama.cpp has them). */
const MODEL_DEFAULTS: Record<string, { addBos: boolean; addEos: boolean; addSep: boolean; addSpacePrefix: boolean }> = {
  llama: { addBos: true, addEos: false, addSep: false, addSpacePrefix: true },
  gpt2: { addBos: false, addEos: false, addSep: false, addSpacePrefix: false },
  bert: { addBos: true, addEos: false, addSep: true, addSpacePrefix: false },
};

/** Special ids a model's tokenizer assumes when the file has no key for them. */
const MODEL_ID_DEFAULTS: Record<string, { bos?: number; eos?: number; unk?: number; sep?: number; pad?: number; mask?: number }> = {
  llama: { bos: 1, eos: 2, unk: 0 },
  bert: { bos: 101, unk: 100, sep: 102, pad: 0, mask: 103 },
};

/** Pre-tokenizer-dependent adjustments to what a GGUF file's keys say (see Vocab.fromMetadata). */
export interface VocabAdjustments {
  /** add_bos_token when the file has no key. */
  addBos?: boolean;
  /** add_sep_token when the file has no key. */
  addSep?: boolean;
  /** The model has no BOS token. */
  noBos?: boolean;
}

export interface VocabInit {
  model: string;
  tokens: readonly string[];
  scores?: ArrayLike<number>;
  types?: ArrayLike<number>;
  bos?: number;
  eos?: number;
  unk?: number;
  pad?: number;
  eot?: number;
  eom?: number;
  sep?: number;
  mask?: number;
  addBos?: boolean;
  addEos?: boolean;
  /** Put SEP last (BERT-style encoders). */
  addSep?: boolean;
  addSpacePrefix?: boolean;
}

export class Vocab {
  readonly model: string;
  readonly size: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly unk: number | undefined;
  readonly pad: number | undefined;
  readonly eot: number | undefined;
  readonly eom: number | undefined;
  /** Separator (BERT's [SEP]). */
  readonly sep: number | undefined;
  readonly mask: number | undefined;
  /** End-of-generation ids: eos, eot, eom and the known end-of-turn control tokens. */
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSep: boolean;
  readonly addSpacePrefix: boolean;
  /** True when the vocabulary has a token for each of the 256 bytes. */
  readonly hasByteTokens: boolean;
  readonly #pieces: readonly string[];
  readonly #scores: Float32Array;
  readonly #types: Uint8Array;
  readonly #ids: ReadonlyMap<string, number>;
  readonly #byteIds: Int32Array;
  readonly #byteValues: Int16Array;

  constructor(init: VocabInit) {
    const n = init.tokens.length;
    if (n === 0) throw new AglmError('GGUF_INVALID', 'The vocabulary has no tokens');
    this.model = init.model;
    this.size = n;
    this.#pieces = Object.freeze([...init.tokens]);
    this.#scores = tableOf(Float32Array, init.scores, n, 0, 'tokenizer.ggml.scores');
    this.#types = tableOf(Uint8Array, init.types, n, TokenType.normal, 'tokenizer.ggml.token_type');
    this.#ids = pieceIds(this.#pieces);
    this.#byteValues = byteValues(this.#pieces, this.#types);
    this.#byteIds = byteIds(this.#byteValues);
    this.hasByteTokens = this.#byteIds.every((id) => id >= 0);
    const idOrUndefined = (id: number | undefined) =>
      id !== undefined && Number.isInteger(id) && id >= 0 && id < n ? id : undefined;
    this.bos = idOrUndefined(init.bos);
    this.eos = idOrUndefined(init.eos);
    this.unk = idOrUndefined(init.unk);
    this.pad = idOrUndefined(init.pad);
    this.eot = idOrUndefined(init.eot);
    this.eom = idOrUndefined(init.eom);
    this.sep = idOrUndefined(init.sep);
    this.mask = idOrUndefined(init.mask);
    this.eog = this.#eogSet();
    const defaults = MODEL_DEFAULTS[init.model] ?? { addBos: false, addEos: false, addSep: false, addSpacePrefix: false };
    this.addBos = (init.addBos ?? defaults.addBos) && this.bos !== undefined;
    this.addEos = (init.addEos ?? defaults.addEos) && this.eos !== undefined;
    this.addSep = (init.addSep ?? defaults.addSep) && this.sep !== undefined;
    this.addSpacePrefix = init.addSpacePrefix ?? defaults.addSpacePrefix;
  }

  /**
   * Reads tokenizer.ggml.* keys. Special ids a key does not give take the model's defaults (llama: BOS 1, EOS 2,
   * UNK 0; bert: [CLS] 101 as BOS, [UNK] 100, [SEP] 102). `adjust` gives defaults for the add_* flags where the
   * file has no key (they depend on the pre-tokenizer) and can drop the BOS token (GLM-4 has none).
   */
  static fromMetadata(m: VocabMetadata, adjust: VocabAdjustments = {}): Vocab {
    const model = m.getString('tokenizer.ggml.model');
    const defaults = MODEL_ID_DEFAULTS[model] ?? {};
    const id = (key: string, fallback?: number) => m.optNumber(`tokenizer.ggml.${key}`) ?? fallback;
    return new Vocab({
      model,
      tokens: m.getStringArray('tokenizer.ggml.tokens'),
      scores: m.optNumberArray('tokenizer.ggml.scores'),
      types: m.optNumberArray('tokenizer.ggml.token_type'),
      bos: adjust.noBos ? undefined : id('bos_token_id', id('cls_token_id', defaults.bos)),
      eos: id('eos_token_id', defaults.eos),
      unk: id('unknown_token_id', defaults.unk),
      pad: id('padding_token_id', defaults.pad),
      eot: id('eot_token_id'),
      eom: id('eom_token_id'),
      sep: id('seperator_token_id', id('separator_token_id', defaults.sep)),
      mask: id('mask_token_id', defaults.mask),
      addBos: m.optBoolean('tokenizer.ggml.add_bos_token') ?? adjust.addBos,
      addEos: m.optBoolean('tokenizer.ggml.add_eos_token'),
      // BERT has no EOS; files without an add_sep_token key may say add_eos_token for its trailing [SEP].
      addSep:
        m.optBoolean('tokenizer.ggml.add_sep_token') ??
        (model === 'bert' ? m.optBoolean('tokenizer.ggml.add_eos_token') : undefined) ??
        adjust.addSep,
      addSpacePrefix: m.optBoolean('tokenizer.ggml.add_space_prefix'),
    });
  }

  /** The token's text as stored (spaces appear as '▁' in SentencePiece vocabularies). */
  piece(id: number): string {
    return this.#pieces[id];
  }

  score(id: number): number {
    return this.#scores[id];
  }

  type(id: number): number {
    return this.#types[id];
  }

  /** The id whose piece is exactly `piece`, or undefined. */
  idOf(piece: string): number | undefined {
    return this.#ids.get(piece);
  }

  /** The byte token ('<0xXX>') for a byte, or undefined. */
  byteId(byte: number): number | undefined {
    const id = this.#byteIds[byte];
    return id >= 0 ? id : undefined;
  }

  /** The byte a byte token ('<0xXX>') stands for, or -1 when the id is not a byte token. */
  byteOf(id: number): number {
    return this.#byteValues[id];
  }

  isValidId(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.size;
  }

  #eogSet(): ReadonlySet<number> {
    const ids = new Set<number>();
    for (const id of [this.eos, this.eot, this.eom]) if (id !== undefined) ids.add(id);
    for (const name of EOG_NAMES) {
      const id = this.#ids.get(name);
      if (id !== undefined && this.#types[id] === TokenType.control) ids.add(id);
    }
    return ids;
  }
}

function tableOf<T extends Float32Array | Uint8Array>(
  Ctor: { new (n: number): T },
  values: ArrayLike<number> | undefined,
  n: number,
  fill: number,
  key: string,
): T {
  const out = new Ctor(n);
  if (values === undefined) return out.fill(fill) as T;
  if (values.length !== n) {
    throw new AglmError('GGUF_INVALID', `${key} has ${values.length} entries but the vocabulary has ${n} tokens`);
  }
  for (let i = 0; i < n; i++) out[i] = values[i];
  return out;
}

function pieceIds(pieces: readonly string[]): Map<string, number> {
  const ids = new Map<string, number>();
  // The first id wins when a piece appears twice.
  for (let i = pieces.length - 1; i >= 0; i--) ids.set(pieces[i], i);
  return ids;
}

function byteValues(pieces: readonly string[], types: Uint8Array): Int16Array {
  const values = new Int16Array(pieces.length).fill(-1);
  for (let i = 0; i < pieces.length; i++) {
    const m = types[i] === TokenType.byte ? /^<0x([0-9A-Fa-f]{2})>$/.exec(pieces[i]) : null;
    if (m !== null) values[i] = parseInt(m[1], 16);
  }
  return values;
}

function byteIds(values: Int16Array): Int32Array {
  const ids = new Int32Array(256).fill(-1);
  for (let i = 0; i < values.length; i++) if (values[i] >= 0 && ids[values[i]] < 0) ids[values[i]] = i;
  return ids;
}
