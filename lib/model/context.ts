// A context: one KV cache (one sequence) over a model, evaluated on a native worker thread. evaluate() continues
// from what the context already holds; abort and dispose are prompt; a call is all-or-nothing.
import { defaultThreadCount } from '../backends/cpu-count.js';
import { AglmError, invalidArgument } from '../errors.js';
import { AlignedTokenBuffer, alignedFloat32 } from '../buffers/aligned.js';
import { fromNative, type NativeContext, type NativeModel } from '../native.js';
import { checkObject, checkTokens, optInt, optOneOf, optSignal } from '../validate.js';

export interface ContextOptions {
  /** Positions the KV cache holds. Default: the model's training context, at most 4096, less if memory is short (model.plan). */
  contextSize?: number;
  /** Threads computing each step. Default: the cores this process may use (CPU affinity and cgroup quota). */
  threads?: number;
  /** Most tokens per native batch while processing a prompt. Default 512. */
  batchSize?: number;
  /** Element type of the KV cache: 'f32' (default, exact) or 'f16' (half the memory; logits move by ~1e-2). */
  kvCacheType?: 'f32' | 'f16';
}

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

/** What a Context needs from its model (kept narrow so the two files do not depend on each other's classes). */
export interface ContextOwner {
  readonly vocabSize: number;
  /** Width of the hidden states evaluate({ hidden }) returns; 0 if the architecture has none. */
  readonly hiddenSize: number;
  /** False for encoder-only models (bert): their graph computes hidden states only. Default true. */
  readonly hasLogits?: boolean;
  readonly contextLength: number;
  /** The context size the precision planner found room for. */
  readonly defaultContextSize: number;
  nativeModel(): NativeModel;
  contextEnded(ctx: Context): void;
}

export class Context {
  readonly contextSize: number;
  readonly threads: number;
  readonly batchSize: number;
  readonly kvCacheType: 'f32' | 'f16';
  #owner: ContextOwner;
  #native: Promise<NativeContext>;
  #handle: NativeContext | undefined;
  #disposed = false;
  #busy = false;
  #position = 0;
  readonly #tokens = new AlignedTokenBuffer();

  /** @internal use model.createContext() */
  constructor(owner: ContextOwner, options: ContextOptions | undefined) {
    const o = checkObject<ContextOptions>('context options', options);
    this.#owner = owner;
    this.contextSize = optInt('contextSize', o.contextSize, 1, 1 << 24, owner.defaultContextSize);
    this.threads = optInt('threads', o.threads, 1, 1024, defaultThreadCount());
    this.batchSize = Math.min(optInt('batchSize', o.batchSize, 1, 1 << 16, 512), this.contextSize);
    this.kvCacheType = optOneOf('kvCacheType', o.kvCacheType, ['f32', 'f16'] as const, 'f32');
    const site = new Error();
    this.#native = owner
      .nativeModel()
      .createContext({ nCtx: this.contextSize, nBatch: this.batchSize, nThreads: this.threads, kvType: this.kvCacheType === 'f16' ? 1 : 0 })
      .then(
        (h) => {
          if (this.#disposed) h.dispose();
          else this.#handle = h;
          return h;
        },
        (e) => {
          throw fromNative(e, site);
        },
      );
    // Creation errors surface on first use; keep them from being reported as unhandled meanwhile.
    this.#native.catch(() => {});
  }

  /** Tokens the context holds (the position the next evaluated token gets). */
  get position(): number {
    return this.#position;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Bytes of native memory the context allocated (KV cache and activations); 0 before it is ready. */
  get memoryBytes(): number {
    return this.#handle && !this.#disposed ? this.#handle.info().memoryBytes : 0;
  }

  /**
   * Evaluates `tokens` after what the context holds and returns their logits: the last token's ([n_vocab]) or
   * every token's ([n_tokens * n_vocab], row i predicting the token after tokens[i]).
   */
  async evaluate(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    const o = checkObject<EvaluateOptions>('evaluate options', options);
    const hidden = o.hidden === undefined ? undefined : optOneOf('hidden', o.hidden, ['last', 'all'] as const, 'last');
    if (hidden !== undefined && o.logits !== undefined) throw invalidArgument('logits', 'no logits option together with hidden', o.logits);
    if (hidden !== undefined && this.#owner.hiddenSize === 0) {
      throw new AglmError('INVALID_ARGUMENT', 'This model\'s architecture does not expose hidden states');
    }
    const mode = hidden ?? optOneOf('logits', o.logits, ['last', 'all', 'none'] as const, 'last');
    if (hidden === undefined && mode !== 'none' && this.#owner.hasLogits === false) {
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
   * @internal evaluate into a caller-owned aligned buffer (generation reuses one). Tokens must be valid ids. `what`:
   * logits (rows of vocabSize) or hidden states (rows of hiddenSize).
   */
  async evaluateInto(
    tokens: ArrayLike<number>,
    mode: 'last' | 'all' | 'none',
    out: Float32Array | null,
    signal?: AbortSignal,
    what: 'logits' | 'hidden' = 'logits',
  ): Promise<void> {
    const site = new Error();
    this.#checkUsable();
    if (tokens.length === 0) throw invalidArgument('tokens', 'at least one token', tokens);
    if (this.#position + tokens.length > this.contextSize) {
      throw new AglmError(
        'CONTEXT_FULL',
        `The context holds ${this.#position} of ${this.contextSize} positions; ${tokens.length} more tokens do not fit`,
      );
    }
    if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
    this.#busy = true;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      this.#handle?.abort();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const handle = await this.#native;
      this.#checkNotDisposed();
      if (aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal?.reason });
      const buf = this.#tokens.fill(tokens);
      const modeId = mode === 'last' ? 0 : mode === 'all' ? 1 : 2;
      this.#position = await handle.evaluate(buf, tokens.length, modeId, out, what === 'hidden' ? 1 : 0);
    } catch (e) {
      const err = fromNative(e, site);
      if (this.#disposed) throw new AglmError('DISPOSED', 'The context was disposed during evaluation', { cause: err });
      if (err.code === 'ABORTED' && signal) err.cause = signal.reason;
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#busy = false;
    }
  }

  /** Forgets everything the context holds. */
  clear(): void {
    this.truncate(0);
  }

  /** Keeps only the first `position` tokens (for example to rewind a chat turn). */
  truncate(position: number): void {
    this.#checkUsable();
    const p = optInt('position', position, 0, this.#position, 0);
    this.#handle?.setPosition(p);
    this.#position = p;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#handle?.dispose();
    this.#owner.contextEnded(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #checkNotDisposed(): void {
    if (this.#disposed) throw new AglmError('DISPOSED', 'The context was disposed');
  }

  #checkUsable(): void {
    this.#checkNotDisposed();
    if (this.#busy) throw new AglmError('BUSY', 'The context is already evaluating; await the previous call first');
  }
}
