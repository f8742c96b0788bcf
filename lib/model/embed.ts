// model.embed(): one vector per text from the hidden states (after the final norm; bert: the last layer's), pooled
// over the text's tokens and L2-normalised, as llama.cpp's embedding contexts compute them.
import { POOLING_TYPES } from '../arch/bert.js';
import { AglmError, invalidArgument } from '../errors.js';
import type { GgufMetadata } from '../gguf/index.js';
import { checkObject, checkTokens, optBoolean, optOneOf, optSignal } from '../validate.js';
import type { Context, ContextOptions } from './context.js';

export const EMBED_POOLINGS = ['mean', 'cls', 'last'] as const;
export type EmbedPooling = (typeof EMBED_POOLINGS)[number];

export interface EmbedOptions {
  /**
   * How token states become one vector: their mean, the first token's ('cls': BERT's [CLS]), or the last token's (a
   * causal decoder's summary of the whole text). Default: the file's `<arch>.pooling_type` when it names one of these,
   * else 'mean' for encoders and 'last' for causal decoders.
   */
  pooling?: EmbedPooling;
  /** Divide each vector by its L2 norm (a zero vector stays zero). Default true. */
  normalize?: boolean;
  signal?: AbortSignal;
}

/** What embedTexts needs from a Model. */
export interface EmbedModel {
  readonly architecture: string;
  readonly hiddenSize: number;
  readonly contextLength: number;
  readonly hparams: { readonly [key: string]: number | string | boolean };
  readonly metadata: GgufMetadata;
  readonly vocabSize: number;
  tokenize(text: string): Uint32Array;
  createContext(options?: ContextOptions): Context;
}

/** The pooling a model's file asks for, else the default of its kind (see EmbedOptions.pooling). */
export function defaultPooling(model: EmbedModel): EmbedPooling {
  const named = POOLING_TYPES[model.metadata.optNumber(`${model.architecture}.pooling_type`) ?? -1];
  if ((EMBED_POOLINGS as readonly string[]).includes(named)) return named as EmbedPooling;
  return model.hparams.causal === false ? 'mean' : 'last';
}

/** Mean, first or last of `rows` rows of `width` in `h`, in double. */
function pool(h: Float32Array, rows: number, width: number, pooling: EmbedPooling): Float32Array {
  if (pooling === 'cls') return h.slice(0, width);
  if (pooling === 'last') return h.slice((rows - 1) * width, rows * width);
  const sum = new Float64Array(width);
  for (let r = 0; r < rows; r++) for (let i = 0; i < width; i++) sum[i] += h[r * width + i];
  return Float32Array.from(sum, (s) => s / rows);
}

function l2Normalize(v: Float32Array): Float32Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += v[i] * v[i];
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let i = 0; i < v.length; i++) v[i] *= inv;
  return v;
}

/** What embed() takes: a text, or an array of texts and token-id arrays (ids are embedded as they are). */
export type EmbedInput = string | readonly (string | ArrayLike<number>)[];

export async function embedTexts(model: EmbedModel, texts: EmbedInput, options?: EmbedOptions): Promise<Float32Array[]> {
  const list = typeof texts === 'string' ? [texts] : texts;
  const isIds = (t: unknown) => t instanceof Uint32Array || t instanceof Int32Array || (Array.isArray(t) && t.every((x) => typeof x === 'number'));
  if (!Array.isArray(list) || list.length === 0 || list.some((t) => typeof t !== 'string' && !isIds(t))) {
    throw invalidArgument('texts', 'a string or a non-empty array of strings or token-id arrays', texts);
  }
  const o = checkObject<EmbedOptions>('embed options', options);
  const pooling = optOneOf('pooling', o.pooling, EMBED_POOLINGS, defaultPooling(model));
  const normalize = optBoolean('normalize', o.normalize, true);
  const signal = optSignal('signal', o.signal);
  if (model.hiddenSize === 0) throw new AglmError('INVALID_ARGUMENT', `The ${model.architecture} architecture does not expose hidden states to embed`);
  const encoder = model.hparams.causal === false;
  const tokenized = list.map((text, i) => {
    const ids = typeof text === 'string' ? model.tokenize(text) : checkTokens(`texts[${i}]`, text, model.vocabSize);
    if (ids.length === 0) throw new AglmError('INVALID_ARGUMENT', `Text ${i} has no tokens (an empty text without BOS) to embed`);
    if (ids.length > model.contextLength) {
      throw new AglmError('CONTEXT_FULL', `Text ${i} has ${ids.length} tokens; the model embeds at most ${model.contextLength} (its context length)`);
    }
    return ids;
  });
  const longest = Math.max(...tokenized.map((t) => t.length));
  // An encoder's attention is non-causal: each text must be one batch, from an empty context.
  const ctx = model.createContext({ contextSize: longest, batchSize: encoder ? longest : Math.min(longest, 512) });
  try {
    const out: Float32Array[] = [];
    for (const ids of tokenized) {
      ctx.clear();
      const h = await ctx.evaluate(ids, { hidden: pooling === 'last' ? 'last' : 'all', signal });
      const v = pool(h, pooling === 'last' ? 1 : ids.length, model.hiddenSize, pooling);
      out.push(normalize ? l2Normalize(v) : v);
    }
    return out;
  } finally {
    ctx.dispose();
  }
}
