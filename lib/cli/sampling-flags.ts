// The command-line flags every generating command shares (model, sampling, threads, CPU variant) and their parsing.
import { AglmError } from '../errors.js';
import type { SamplerOptions } from '../sampler/index.js';

/** parseArgs option specs of the shared flags. */
export const SAMPLING_FLAGS = {
  model: { type: 'string', short: 'm' },
  n: { type: 'string', short: 'n' },
  temperature: { type: 'string', short: 't' },
  seed: { type: 'string', short: 's' },
  threads: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  cpu: { type: 'string' },
  timings: { type: 'boolean' },
} as const;

/** A numeric flag's value, or undefined when absent; INVALID_ARGUMENT when it is not a number. */
export function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new AglmError('INVALID_ARGUMENT', `Expected a number for --${name} but received "${v}"`);
  return n;
}

/** The sampler options and maxTokens (-n) the shared flags give. */
export function samplingOptions(
  values: Partial<Record<keyof typeof SAMPLING_FLAGS, string | boolean>>,
): SamplerOptions & { maxTokens?: number } {
  const v = values as Record<string, string | undefined>;
  return {
    maxTokens: num('n', v.n),
    temperature: num('temperature', v.temperature),
    seed: num('seed', v.seed),
    topK: num('top-k', v['top-k']),
    topP: num('top-p', v['top-p']),
    minP: num('min-p', v['min-p']),
    repeatPenalty: num('repeat-penalty', v['repeat-penalty']),
  };
}
