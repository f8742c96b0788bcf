// The sampler: logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> softmax draw, over a reusable scratch buffer.
import { isMediaId } from '../vision/media.js';
import { AglmError, invalidArgument } from '../errors.js';
import { Candidates } from './candidates.js';
import { drawToken } from './dist.js';
import { argmax } from './greedy.js';
import { applyMinP } from './min-p.js';
import { applyPenalties, penaltiesActive, PenaltyWindow, type PenaltyParams } from './penalties.js';
import { randomSeed, Rng } from './rng.js';
import { applyTemperature } from './temperature.js';
import { applyTopK } from './top-k.js';
import { applyTopP } from './top-p.js';
import { validateSamplerOptions, type ResolvedSamplerOptions, type SamplerOptions } from './options.js';

/** What a grammar offers the sampler: a check of one token, and the mask of all allowed ones (1 = allowed). */
export interface TokenConstraint {
  allows(token: number): boolean;
  mask(): Uint8Array;
}

export class Sampler {
  readonly options: Readonly<ResolvedSamplerOptions>;
  readonly vocabSize: number;
  readonly #penalties: PenaltyParams;
  readonly #window: PenaltyWindow;
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  #seed: number;

  constructor(options: SamplerOptions, vocabSize: number) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize <= 0) throw invalidArgument('vocabSize', 'a positive integer', vocabSize);
    this.options = Object.freeze(validateSamplerOptions(options));
    this.vocabSize = vocabSize;
    const o = this.options;
    this.#penalties = { repeat: o.repeatPenalty, frequency: o.frequencyPenalty, presence: o.presencePenalty };
    this.#window = new PenaltyWindow(o.penaltyWindow);
    this.#candidates = new Candidates(vocabSize);
    for (const id of o.logitBias.keys()) {
      if (id >= vocabSize) throw invalidArgument('logitBias', `token ids from 0 to ${vocabSize - 1}`, id);
    }
    this.#seed = o.seed ?? randomSeed();
    this.#rng = new Rng(this.#seed);
  }

  /** The seed the random draws currently follow (the given one, or the random one picked when none was given). */
  get seed(): number {
    return this.#seed;
  }

  /** Records a token (usually the one just sampled, or a prompt token) in the penalty window. */
  accept(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) {
      throw invalidArgument('token', `an integer token id from 0 to ${this.vocabSize - 1}`, token);
    }
    this.#window.accept(token);
  }

  /** Accepts each token; an image's virtual ids (see vision/media.ts) are not in the vocabulary and are skipped. */
  acceptMany(tokens: ArrayLike<number>): void {
    for (let i = 0; i < tokens.length; i++) if (!isMediaId(tokens[i])) this.accept(tokens[i]);
  }

  /**
   * Picks the next token from `logits` (length vocabSize; left unchanged). Does not accept() the token. With a
   * constraint (a grammar), the pick is checked against it and, only when refused, redone over the tokens the
   * constraint allows (llama.cpp's order: one token is cheap to check, the whole vocabulary is not).
   */
  sample(logits: Float32Array, constraint?: TokenConstraint): number {
    if (!(logits instanceof Float32Array) || logits.length !== this.vocabSize) {
      throw invalidArgument('logits', `a Float32Array of length ${this.vocabSize}`, logits);
    }
    const first = this.#pick(logits);
    if (constraint === undefined || constraint.allows(first)) return first;
    const allowed = constraint.mask();
    if (allowed.length !== this.vocabSize) throw invalidArgument('constraint', `a mask of length ${this.vocabSize}`, allowed);
    return this.#pick(logits, allowed);
  }

  #pick(logits: Float32Array, allowed?: Uint8Array): number {
    const c = this.#candidates;
    const o = this.options;
    c.load(logits);
    for (const [id, bias] of o.logitBias) c.vals[id] += bias;
    if (penaltiesActive(this.#penalties)) applyPenalties(c.vals, this.#window.counts, this.#penalties);
    if (allowed !== undefined && c.keep(allowed) === 0) {
      throw new AglmError('INVALID_GRAMMAR', 'No token of this vocabulary can continue the grammar from here');
    }
    if (o.temperature === 0) return argmax(c);
    applyTopK(c, o.topK);
    applyTopP(c, o.topP);
    applyMinP(c, o.minP);
    applyTemperature(c, o.temperature);
    return drawToken(c, this.#rng);
  }

  /** Clears the penalty window and restarts the random sequence (same seed if one was given, else a new random one). */
  reset(): void {
    this.#window.reset();
    if (this.options.seed === undefined) this.#seed = randomSeed();
    this.#rng.reseed(this.#seed);
  }
}
