// A sequence: one token history in its context's KV cell pool, with its own position. Evaluations of different
// sequences of a context run concurrently and are batched into shared steps by the context's scheduler; each call is
// all-or-nothing (on abort or error the sequence keeps the positions it had). fork() shares the prefix's cells.
import { AglmError, invalidArgument } from '../errors.js';
import { alignedFloat32 } from '../buffers/aligned.js';
import { fromNative, type NativeContext } from '../native.js';
import { checkObject, checkTokens, optInt, optOneOf, optSignal } from '../validate.js';
import { requestTokens, type OutputMode, type ScheduledSequence, type StepRequest, type StepScheduler } from './scheduler.js';
import type { Context } from './context.js';
import { complete, generate, type CompletionResult, type GenerateChunk, type GenerateModel, type GenerateOptions, type GenerateReturn } from './generate.js';

export interface EvaluateOptions {
  /** Which logits to return: the last token's (default), every token's ([n_tokens * n_vocab]), or none. */
  logits?: 'last' | 'all' | 'none';
  /**
   * Return the hidden states after the final norm instead of logits: the last token's ([hiddenSize]) or every
   * token's ([n_tokens * hiddenSize]). The output projection is not computed. Not together with `logits`.
   */
  hidden?: 'last' | 'all';
  signal?: AbortSignal;
}

/** @internal What a sequence needs from its context. */
export interface SequenceOwner {
  readonly context: Context;
  readonly contextSize: number;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly hasLogits: boolean;
  /** False for encoders: a sequence is evaluated in one step from empty. */
  readonly causal: boolean;
  readonly scheduler: StepScheduler;
  readonly model: GenerateModel;
  native(): Promise<NativeContext>;
  nativeNow(): NativeContext | undefined;
  /** A new sequence sharing the first `n` positions of `source` (counted against the context's sequences). */
  forkSequence(source: Sequence, n: number): Sequence;
  sequenceEnded(seq: Sequence): void;
  checkNotDisposed(): void;
}

export class Sequence implements ScheduledSequence {
  readonly #owner: SequenceOwner;
  /** The native id; -1 until the native context exists (a sequence holds nothing before its first evaluation). */
  #id = -1;
  #position = 0;
  #disposed = false;
  #busy = false;
  #pending: StepRequest | undefined;

  /** @internal use context.createSequence() or sequence.fork() */
  constructor(owner: SequenceOwner, nativeId = -1, position = 0) {
    this.#owner = owner;
    this.#id = nativeId;
    this.#position = position;
  }

  /** The context whose KV cells the sequence uses. */
  get context(): Context {
    return this.#owner.context;
  }

  /** Tokens the sequence holds (the position the next evaluated token gets). */
  get position(): number {
    return this.#position;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** @internal */
  get nativeId(): number {
    return this.#id;
  }

  /** @internal the scheduler's report of the sequence's new length */
  moved(position: number): void {
    this.#position = position;
  }

  /**
   * Evaluates `tokens` after what the sequence holds and returns their logits: the last token's ([n_vocab]) or every
   * token's ([n_tokens * n_vocab], row i predicting the token after tokens[i]), or hidden states (options.hidden).
   */
  async evaluate(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    const o = checkObject<EvaluateOptions>('evaluate options', options);
    const hidden = o.hidden === undefined ? undefined : optOneOf('hidden', o.hidden, ['last', 'all'] as const, 'last');
    if (hidden !== undefined && o.logits !== undefined) throw invalidArgument('logits', 'no logits option together with hidden', o.logits);
    if (hidden !== undefined && this.#owner.hiddenSize === 0) {
      throw new AglmError('INVALID_ARGUMENT', "This model's architecture does not expose hidden states");
    }
    const mode = hidden ?? optOneOf('logits', o.logits, ['last', 'all', 'none'] as const, 'last');
    if (hidden === undefined && mode !== 'none' && !this.#owner.hasLogits) {
      throw new AglmError('INVALID_ARGUMENT', 'This model is an encoder without logits: use model.embed() or evaluate(tokens, { hidden })');
    }
    const signal = optSignal('signal', o.signal);
    const ids = checkTokens('tokens', tokens, this.#owner.vocabSize);
    const rows = mode === 'all' ? ids.length : mode === 'last' ? 1 : 0;
    const out = alignedFloat32(rows * (hidden ? this.#owner.hiddenSize : this.#owner.vocabSize));
    await this.evaluateInto(ids, mode, out, signal, hidden ? 'hidden' : 'logits');
    return out;
  }

  /**
   * @internal Evaluates into a caller-owned aligned buffer (generation reuses one). Tokens must be valid ids. `what`:
   * logits (rows of vocabSize) or hidden states (rows of hiddenSize).
   */
  async evaluateInto(
    tokens: ArrayLike<number>,
    mode: OutputMode,
    out: Float32Array | null,
    signal?: AbortSignal,
    what: 'logits' | 'hidden' = 'logits',
  ): Promise<void> {
    const site = new Error();
    this.#checkUsable();
    if (tokens.length === 0) throw invalidArgument('tokens', 'at least one token', tokens);
    if (this.#position + tokens.length > this.#owner.contextSize) {
      throw new AglmError(
        'CONTEXT_FULL',
        `The sequence holds ${this.#position} of the context's ${this.#owner.contextSize} positions; ${tokens.length} more tokens do not fit`,
      );
    }
    if (!this.#owner.causal && this.#position !== 0) {
      throw new AglmError('INVALID_ARGUMENT', 'An encoder evaluates a sequence in one call from empty: clear() it first');
    }
    if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
    this.#busy = true;
    try {
      const native = await this.#owner.native();
      this.#checkNotDisposed();
      if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
      if (this.#id < 0) this.#id = native.createSequence();
      const start = this.#position;
      await new Promise<void>((resolve, reject) => {
        this.#pending = {
          sequence: this,
          tokens: requestTokens(tokens),
          mode,
          kind: what === 'hidden' ? 1 : 0,
          out,
          signal,
          start,
          done: 0,
          whole: !this.#owner.causal,
          resolve,
          reject,
        };
        this.#owner.scheduler.submit(this.#pending);
      });
    } catch (e) {
      const err = fromNative(e, site);
      // Failures made by the scheduler carry its stack: show the caller's instead.
      if (e instanceof AglmError && site.stack) err.stack = `AglmError: ${err.message}\n${site.stack.split('\n').slice(1).join('\n')}`;
      throw err;
    } finally {
      this.#pending = undefined;
      this.#busy = false;
    }
  }

  /** Streams generated text after what the sequence holds (see model.generate for the options). */
  generate(prompt: string | ArrayLike<number>, options?: Omit<GenerateOptions, 'context' | 'sequence'>): AsyncGenerator<GenerateChunk, GenerateReturn> {
    this.#checkNotDisposed();
    return generate(this.#owner.model, prompt, { ...checkObject<GenerateOptions>('generate options', options), sequence: this });
  }

  /** Generates a completion after what the sequence holds. */
  complete(prompt: string | ArrayLike<number>, options?: Omit<GenerateOptions, 'context' | 'sequence'>): Promise<CompletionResult> {
    this.#checkNotDisposed();
    return complete(this.#owner.model, prompt, { ...checkObject<GenerateOptions>('generate options', options), sequence: this });
  }

  /** Keeps only the first `position` tokens (for example to rewind a chat turn); the cells after it are freed. */
  truncate(position: number): void {
    this.#checkUsable();
    const p = optInt('position', position, 0, this.#position, 0);
    if (p === this.#position) return;
    this.#owner.nativeNow()!.truncateSequence(this.#id, p);
    this.#position = p;
  }

  /** Forgets everything the sequence holds. */
  clear(): void {
    this.truncate(0);
  }

  /**
   * A new sequence of the same context holding this one's tokens, without copying them: the two share the cells of
   * the prefix and each continues on its own. It counts against the context's `sequences`.
   */
  fork(): Sequence {
    this.#checkUsable();
    return this.#owner.forkSequence(this, this.#position);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#pending) this.#owner.scheduler.cancel(this.#pending, new AglmError('DISPOSED', 'The sequence was disposed during evaluation'));
    const native = this.#owner.nativeNow();
    if (native && this.#id >= 0) native.freeSequence(this.#id);
    this.#position = 0;
    this.#owner.sequenceEnded(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  /** @internal the context was disposed */
  ended(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#pending) this.#owner.scheduler.cancel(this.#pending, new AglmError('DISPOSED', 'The context was disposed during evaluation'));
  }

  #checkNotDisposed(): void {
    this.#owner.checkNotDisposed();
    if (this.#disposed) throw new AglmError('DISPOSED', 'The sequence was disposed');
  }

  #checkUsable(): void {
    this.#checkNotDisposed();
    if (this.#busy) throw new AglmError('BUSY', 'The sequence is already evaluating; await the previous call first');
  }
}
