// Public surface of the sampler: options, their validation, and the Sampler chain.
export { Sampler, type TokenConstraint } from './chain.js';
export { SAMPLER_DEFAULTS, validateSamplerOptions, type ResolvedSamplerOptions, type SamplerOptions } from './options.js';
