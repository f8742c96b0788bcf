// Sampler options: their defaults and the checks that turn an unknown value into resolved options.
import { invalidArgument } from '../errors.js';

export interface SamplerOptions {
  /** Softmax temperature. Default 0.8; 0 = greedy (argmax after penalties). */
  temperature?: number;
  /** Keep the k most likely tokens. Default 40; 0 = off. */
  topK?: number;
  /** Keep the most likely tokens whose probabilities sum to at least p. Default 0.95; 1 = off. */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one. Default 0.05; 0 = off. */
  minP?: number;
  /** Divide positive logits (multiply negative ones) of recent tokens by this. Default 1 = off. */
  repeatPenalty?: number;
  /** Subtract count * frequencyPenalty from each recent token's logit. Default 0. */
  frequencyPenalty?: number;
  /** Subtract presencePenalty once from each recent token's logit. Default 0. */
  presencePenalty?: number;
  /** How many of the last accepted tokens the penalties look at. Default 64; 0 = none. */
  penaltyWindow?: number;
  /** Seed for the random draw: a non-negative integer (up to 2^53 - 1). Omitted: a random seed. */
  seed?: number;
  /**
   * Added to the logits of these token ids before anything else (OpenAI's logit_bias): a map or an object keyed by
   * token id. -Infinity bans a token; +Infinity forces it where it is the only such token.
   */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
}

/** Options with every default filled in; `seed` stays undefined when none was given, `logitBias` empty. */
export type ResolvedSamplerOptions = Required<Omit<SamplerOptions, 'seed' | 'logitBias'>> & {
  seed: number | undefined;
  logitBias: ReadonlyMap<number, number>;
};

export const SAMPLER_DEFAULTS: Readonly<Required<Omit<SamplerOptions, 'seed' | 'logitBias'>>> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyWindow: 64,
});

type Check = { expected: string; ok: (v: number) => boolean };

const isFiniteNumber = (v: number) => Number.isFinite(v);
const CHECKS: Record<Exclude<keyof SamplerOptions, 'logitBias'>, Check> = {
  temperature: { expected: 'a finite number >= 0', ok: (v) => isFiniteNumber(v) && v >= 0 },
  topK: { expected: 'an integer >= 0', ok: (v) => Number.isSafeInteger(v) && v >= 0 },
  topP: { expected: 'a number from 0 to 1', ok: (v) => v >= 0 && v <= 1 },
  minP: { expected: 'a number from 0 to 1', ok: (v) => v >= 0 && v <= 1 },
  repeatPenalty: { expected: 'a finite number > 0', ok: (v) => isFiniteNumber(v) && v > 0 },
  frequencyPenalty: { expected: 'a finite number', ok: isFiniteNumber },
  presencePenalty: { expected: 'a finite number', ok: isFiniteNumber },
  penaltyWindow: { expected: 'an integer >= 0', ok: (v) => Number.isSafeInteger(v) && v >= 0 },
  seed: { expected: 'an integer from 0 to 2^53 - 1', ok: (v) => Number.isSafeInteger(v) && v >= 0 },
};

function option(o: Record<string, unknown>, key: Exclude<keyof SamplerOptions, 'logitBias'>): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !CHECKS[key].ok(v)) throw invalidArgument(key, CHECKS[key].expected, v);
  return v;
}

/**
 * Checks sampler options (undefined = all defaults); throws INVALID_ARGUMENT naming the first bad option.
 * Keys that are not sampler options are ignored, so a larger options object can be passed as is.
 */
export function validateSamplerOptions(o: unknown): ResolvedSamplerOptions {
  if (o === undefined) return { ...SAMPLER_DEFAULTS, seed: undefined, logitBias: new Map() };
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw invalidArgument('sampler options', 'an object', o);
  const rec = o as Record<string, unknown>;
  const out: ResolvedSamplerOptions = { ...SAMPLER_DEFAULTS, seed: option(rec, 'seed'), logitBias: logitBias(rec.logitBias) };
  for (const key of Object.keys(SAMPLER_DEFAULTS) as (keyof typeof SAMPLER_DEFAULTS)[]) {
    out[key] = option(rec, key) ?? SAMPLER_DEFAULTS[key];
  }
  return out;
}

/** logitBias as a map of integer token ids to non-NaN biases (ids are checked against the vocabulary by the Sampler). */
function logitBias(v: unknown): ReadonlyMap<number, number> {
  if (v === undefined) return new Map();
  const entries: [unknown, unknown][] =
    v instanceof Map ? [...v.entries()] : v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v) : [];
  if (entries.length === 0 && !(v instanceof Map) && (v === null || typeof v !== 'object' || Array.isArray(v))) {
    throw invalidArgument('logitBias', 'a Map or an object of token id -> bias', v);
  }
  const out = new Map<number, number>();
  for (const [k, b] of entries) {
    const id = typeof k === 'string' && /^(0|[1-9][0-9]*)$/.test(k) ? Number(k) : k;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw invalidArgument('logitBias', 'token ids as keys', k);
    if (typeof b !== 'number' || Number.isNaN(b)) throw invalidArgument(`logitBias[${id}]`, 'a number', b);
    out.set(id, b);
  }
  return out;
}
