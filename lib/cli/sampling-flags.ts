// The command-line flags every generating command shares (model, sampling, threads, CPU variant, backend, GPU layers)
// and their parsing.
import { AglmError } from '../errors.js';
import type { SamplerOptions } from '../sampler/index.js';
import type { CpuVariant } from '../model/model.js';

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
  backend: { type: 'string' },
  'gpu-layers': { type: 'string' },
  timings: { type: 'boolean' },
} as const;

/** parseArgs specs of the flags that choose where a model runs (every command that loads one). */
export const BACKEND_FLAGS = {
  cpu: { type: 'string' },
  backend: { type: 'string' },
  'gpu-layers': { type: 'string' },
} as const;

/** Usage text of BACKEND_FLAGS. */
export const BACKEND_USAGE = '[--cpu ref|avx2|avx512|amx|neon] [--backend cpu|vulkan|cuda] [--gpu-layers N]';

/** loadModel options from BACKEND_FLAGS' values. */
export function backendOptions(values: { cpu?: string | boolean; backend?: string | boolean; 'gpu-layers'?: string | boolean }): {
  cpuVariant?: CpuVariant;
  backend?: string;
  gpuLayers?: number;
} {
  const str = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);
  return {
    ...(str(values.cpu) !== undefined ? { cpuVariant: str(values.cpu) as CpuVariant } : {}),
    ...(str(values.backend) !== undefined ? { backend: str(values.backend) } : {}),
    ...(str(values['gpu-layers']) !== undefined ? { gpuLayers: num('gpu-layers', str(values['gpu-layers'])) } : {}),
  };
}

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
