// The immutable vocabulary read from GGUF metadata: pieces, scores, token types, special ids and tokenizer flags.
import { AglmError } from '../errors.js';

/**
 * Token types, numbered as GGUF stores them in tokenizer.ggml.token_type. A vocabulary read from GGUF has them as
 * llama.cpp sees them, after its corrections by token text (see ggufTokenTypes).
 */
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

/**
 * Token texts that end generation (a turn, a message, a document) in common formats: llama.cpp's list (its vocabulary
 * loader, llama-vocab.cpp). Those that are control tokens join the end-of-generation set; in a GGUF vocabulary each one
 * is a control token whatever the file says (see ggufTokenTypes), as llama.cpp makes it.
 */
const EOG_NAMES = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<\uFF5Cend\u2581of\u2581sentence\uFF5C>', '[e~[',
];

/**
 * Fill-in-the-middle token texts, with the keys that name their ids. Where the file has none of the keys, llama.cpp
 * takes the token found by text and makes it a control token.
 */
const FIM_NAMES: readonly { keys: readonly string[]; names: readonly string[] }[] = [
  {
    keys: ['fim_pre_token_id', 'prefix_token_id'],
    names: ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<\uFF5Cfim\u2581begin\uFF5C>', '<PRE>', '\u2581<PRE>',
      '<|code_prefix|>', '<|prefix|>'],
  },
  {
    keys: ['fim_suf_token_id', 'suffix_token_id'],
    names: ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<\uFF5Cfim\u2581hole\uFF5C>', '<SUF>', '\u2581<SUF>',
      '<|code_suffix|>', '<|suffix|>'],
  },
  {
    keys: ['fim_mid_token_id', 'middle_token_id'],
    names: ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<\uFF5Cfim\u2581end\uFF5C>', '<MID>', '\u2581<MID>',
      '<|code_middle|>', '<|middle|>'],
  },
  { keys: ['fim_pad_token_id'], names: ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'] },
  { keys: ['fim_rep_token_id'], names: ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'] },
  { keys: ['fim_sep_token_id'], names: ['<|file_sep|>'] },
];

/** gpt-oss: llama.cpp makes these user-defined (always matched in the input, always shown when decoding). */
const ALWAYS_SHOWN_NAMES = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

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
  /** End-of-generation ids: eos, eot, eom and the control tokens of EOG_NAMES. */
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
   * file has no key (they depend on the pre-tokenizer) and can drop the BOS token (GLM-4 has none). Token types are
   * tokenizer.ggml.token_type with llama.cpp's corrections by token text (ggufTokenTypes).
   */
  static fromMetadata(m: VocabMetadata, adjust: VocabAdjustments = {}): Vocab {
    const model = m.getString('tokenizer.ggml.model');
    const defaults = MODEL_ID_DEFAULTS[model] ?? {};
    const id = (key: string, fallback?: number) => m.optNumber(`tokenizer.ggml.${key}`) ?? fallback;
    const tokens = m.getStringArray('tokenizer.ggml.tokens');
    return new Vocab({
      model,
      tokens,
      scores: m.optNumberArray('tokenizer.ggml.scores'),
      types: ggufTokenTypes(m, tokens),
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

  /** The token's type (TokenType); from GGUF, as llama.cpp sees it (see ggufTokenTypes). */
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

/**
 * tokenizer.ggml.token_type (normal where absent) with llama.cpp's corrections by token text (its vocabulary loader,
 * llama-vocab.cpp; GGUF has no per-token attributes, so llama.cpp recognizes some tokens by their text):
 * - every end-of-generation text of EOG_NAMES becomes a control token (Phi-3's '</s>' is user-defined in its files,
 *   which would match it in any input; as a control token it is plain text unless special tokens are parsed);
 * - so does each fill-in-the-middle text of FIM_NAMES whose id no key gives (llama.cpp takes one per kind, the first
 *   its hash map yields, where a vocabulary has several; here all of them are);
 * - gpt-oss's '<|channel|>', '<|message|>', '<|start|>' and '<|constrain|>' become user-defined;
 * - with '<|return|>' and '<|call|>' (o200k_harmony), or '<|call|>'/'<|calls|>' and '<|flush|>' (solar-open),
 *   '<|end|>' becomes user-defined and does not end generation;
 * - with '<|tool_response>' (Gemma 4), '</s>' becomes a normal token and does not end generation.
 * Where a text appears twice, the correction applies to its last id, as llama.cpp's text-to-id map holds that one.
 */
export function ggufTokenTypes(m: VocabMetadata, tokens: readonly string[]): ArrayLike<number> {
  const raw = m.optNumberArray('tokenizer.ggml.token_type');
  if (raw !== undefined && raw.length !== tokens.length) return raw; // the Vocab constructor reports it
  const types = tableOf(Uint8Array, raw, tokens.length, TokenType.normal, 'tokenizer.ggml.token_type');
  const wanted = new Set([...EOG_NAMES, ...FIM_NAMES.flatMap((f) => f.names), ...ALWAYS_SHOWN_NAMES]);
  const ids = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) if (wanted.has(tokens[i])) ids.set(tokens[i], i);
  const setType = (name: string, type: number) => {
    const id = ids.get(name);
    if (id !== undefined) types[id] = type;
  };
  for (const { keys, names } of FIM_NAMES) {
    const given = keys.some((k) => {
      const id = m.optNumber(`tokenizer.ggml.${k}`);
      return id !== undefined && Number.isInteger(id) && id >= 0 && id < tokens.length;
    });
    if (!given) for (const name of names) setType(name, TokenType.control);
  }
  for (const name of EOG_NAMES) setType(name, TokenType.control);
  for (const name of ALWAYS_SHOWN_NAMES) setType(name, TokenType.userDefined);
  const has = (name: string) => ids.has(name);
  const hasCall = has('<|call|>') || has('<|calls|>');
  if (has('<|end|>') && ((has('<|return|>') && hasCall) || (hasCall && has('<|flush|>')))) setType('<|end|>', TokenType.userDefined);
  if (has('<|tool_response>')) setType('</s>', TokenType.normal);
  return types;
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
