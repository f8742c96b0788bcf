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
  optNumber(key: string): number | undefined;
  optBoolean(key: string): boolean | undefined;
  /** A numeric array (Float32Array, Int32Array...) or undefined when the key is absent. */
  optNumberArray(key: string): ArrayLike<number> | undefined;
}

/** Control-token texts that end a turn in common chat formats; they join the end-of-generation set. */
const EOG_NAMES = ['<|eot_id|>', '<|im_end|>', '<|endoftext|>', '<|end|>', '<end_of_turn>', '<|eom_id|>'];

/** Per-model defaults for the flags when the GGUF file has no key for them. */
const MODEL_DEFAULTS: Record<string, { addBos: boolean; addEos: boolean; addSpacePrefix: boolean }> = {
  llama: { addBos: true, addEos: false, addSpacePrefix: true },
};

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
  addBos?: boolean;
  addEos?: boolean;
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
  /** End-of-generation ids: eos, eot, eom and the known end-of-turn control tokens. */
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
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
    this.eog = this.#eogSet();
    const defaults = MODEL_DEFAULTS[init.model] ?? { addBos: false, addEos: false, addSpacePrefix: false };
    this.addBos = (init.addBos ?? defaults.addBos) && this.bos !== undefined;
    this.addEos = (init.addEos ?? defaults.addEos) && this.eos !== undefined;
    this.addSpacePrefix = init.addSpacePrefix ?? defaults.addSpacePrefix;
  }

  /** Reads tokenizer.ggml.* keys; special ids default to llama's 1/2/0 for the 'llama' model when absent. */
  static fromMetadata(m: VocabMetadata): Vocab {
    const model = m.getString('tokenizer.ggml.model');
    const isLlama = model === 'llama';
    const id = (key: string, llamaDefault?: number) =>
      m.optNumber(`tokenizer.ggml.${key}`) ?? (isLlama ? llamaDefault : undefined);
    return new Vocab({
      model,
      tokens: m.getStringArray('tokenizer.ggml.tokens'),
      scores: m.optNumberArray('tokenizer.ggml.scores'),
      types: m.optNumberArray('tokenizer.ggml.token_type'),
      bos: id('bos_token_id', 1),
      eos: id('eos_token_id', 2),
      unk: id('unknown_token_id', 0),
      pad: id('padding_token_id'),
      eot: id('eot_token_id'),
      eom: id('eom_token_id'),
      addBos: m.optBoolean('tokenizer.ggml.add_bos_token'),
      addEos: m.optBoolean('tokenizer.ggml.add_eos_token'),
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
