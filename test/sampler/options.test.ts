// Sampler option validation: defaults, and INVALID_ARGUMENT errors in the house sentence shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAglmError } from '../../lib/errors.js';
import { Sampler, SAMPLER_DEFAULTS, validateSamplerOptions } from '../../lib/sampler/index.js';

const SHAPE = /^Expected .+ for .+ but received .+ of type \w+$/;

function rejects(fn: () => unknown, message?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isAglmError(e, 'INVALID_ARGUMENT'), `expected INVALID_ARGUMENT, got ${String(e)}`);
    assert.match(e.message, SHAPE);
    if (message !== undefined) assert.equal(e.message, message);
    return true;
  });
}

test('defaults fill every option; the seed stays undefined when omitted', () => {
  assert.deepEqual(validateSamplerOptions(undefined), { ...SAMPLER_DEFAULTS, seed: undefined, logitBias: new Map() });
  assert.deepEqual(validateSamplerOptions({}), {
    temperature: 0.8,
    topK: 40,
    topP: 0.95,
    minP: 0.05,
    repeatPenalty: 1,
    frequencyPenalty: 0,
    presencePenalty: 0,
    penaltyWindow: 64,
    seed: undefined,
    logitBias: new Map(),
  });
  assert.equal(validateSamplerOptions({ seed: 7, temperature: 0 }).seed, 7);
  assert.equal(validateSamplerOptions({ topP: undefined }).topP, 0.95);
});

test('bad values are rejected with INVALID_ARGUMENT naming the option', () => {
  rejects(() => validateSamplerOptions({ temperature: -1 }), 'Expected a finite number >= 0 for temperature but received -1 of type number');
  rejects(() => validateSamplerOptions({ temperature: '0.8' }), 'Expected a finite number >= 0 for temperature but received "0.8" of type string');
  rejects(() => validateSamplerOptions({ temperature: Infinity }));
  rejects(() => validateSamplerOptions({ topK: 1.5 }), 'Expected an integer >= 0 for topK but received 1.5 of type number');
  rejects(() => validateSamplerOptions({ topP: 1.5 }), 'Expected a number from 0 to 1 for topP but received 1.5 of type number');
  rejects(() => validateSamplerOptions({ topP: NaN }));
  rejects(() => validateSamplerOptions({ minP: -0.1 }));
  rejects(() => validateSamplerOptions({ repeatPenalty: 0 }));
  rejects(() => validateSamplerOptions({ frequencyPenalty: null }));
  rejects(() => validateSamplerOptions({ presencePenalty: NaN }));
  rejects(() => validateSamplerOptions({ penaltyWindow: -1 }));
  rejects(() => validateSamplerOptions({ seed: -1 }));
  rejects(() => validateSamplerOptions({ seed: 2 ** 53 }));
  rejects(() => validateSamplerOptions(null), 'Expected an object for sampler options but received null of type null');
  rejects(() => validateSamplerOptions(5));
});

test('the Sampler checks its vocabulary size, logits and accepted tokens', () => {
  rejects(() => new Sampler({}, 0));
  rejects(() => new Sampler({ topK: -1 }, 10));
  const s = new Sampler({ seed: 1 }, 4);
  rejects(() => s.sample(new Float32Array(5)), 'Expected a Float32Array of length 4 for logits but received [object Float32Array] of type object');
  rejects(() => s.sample([0, 1, 2, 3] as unknown as Float32Array));
  rejects(() => s.accept(4));
  rejects(() => s.acceptMany([0, -1]));
});
