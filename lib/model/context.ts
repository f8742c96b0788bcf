// A context: one KV cell pool (contextSize cells) shared by up to `sequences` sequences, one thread pool, and the
// scheduler that batches the sequences' evaluations into shared steps. The context's own evaluate(), position,
// truncate() and clear() act on its default sequence (created on first use), so a one-sequence context reads as before.
import { defaultThreadCount } from '../backends/cpu-count.js';
import { AglmError } from '../errors.js';
import { fromNative, type NativeContext, type NativeModel } from '../native.js';
import { checkObject, optInt, optOneOf } from '../validate.js';
import type { GenerateModel } from './generate.js';
import { StepScheduler } from './scheduler.js';
import { Sequence, type EvaluateOptions, type SequenceOwner } from './sequence.js';

export type { EvaluateOptions } from './sequence.js';

export interface ContextOptions {
  /**
   * KV cells of the context: the positions all its sequences hold together (any one sequence may grow to all of them
   * while they are free). Default: the model's training context, at most 4096, less if memory is short (model.plan).
   */
  contextSize?: number;
  /** The most sequences that may exist at once (context.createSequence(), fork()). Default 1. */
  sequences?: number;
  /** Threads computing each step. Default: the cores this process may use (CPU affinity and cgroup quota). */
  threads?: number;
  /** Most tokens per step (all sequences together; longer prompts are split). Default 512. */
  batchSize?: number;
  /** Element type of the KV cache: 'f32' (default, exact) or 'f16' (half the memory; logits move by ~1e-2). */
  kvCacheType?: 'f32' | 'f16';
}

/** What a Context needs from its model (kept narrow so the two files do not depend on each other's classes). */
export interface ContextOwner {
  readonly vocabSize: number;
  /** Width of the hidden states evaluate({ hidden }) returns; 0 if the architecture has none. */
  readonly hiddenSize: number;
  /** False for encoder-only models (bert): their graph computes hidden states only. Default true. */
  readonly hasLogits?: boolean;
  /** False for encoders (non-causal attention): each sequence is evaluated in one step. Default true. */
  readonly causal?: boolean;
  /** Multi-section rope (M-RoPE): tokens take 3-D positions, images advance the position by their longer side. */
  readonly mrope?: boolean;
  readonly contextLength: number;
  /** The context size the precision planner found room for. */
  readonly defaultContextSize: number;
  /** The model, for sequence.generate() and complete(). */
  readonly model: GenerateModel;
  nativeModel(): NativeModel;
  contextEnded(ctx: Context): void;
}

export class Context {
  readonly contextSize: number;
  /** The most sequences that may exist at once. */
  readonly sequences: number;
  readonly threads: number;
  readonly batchSize: number;
  readonly kvCacheType: 'f32' | 'f16';
  readonly #owner: ContextOwner;
  readonly #native: Promise<NativeContext>;
  #handle: NativeContext | undefined;
  #disposed = false;
  readonly #live = new Set<Sequence>();
  #default: Sequence | undefined;
  readonly #scheduler: StepScheduler;
  readonly #seqOwner: SequenceOwner;

  /** @internal use model.createContext() */
  constructor(owner: ContextOwner, options: ContextOptions | undefined) {
    const o = checkObject<ContextOptions>('context options', options);
    this.#owner = owner;
    this.contextSize = optInt('contextSize', o.contextSize, 1, 1 << 24, owner.defaultContextSize);
    this.sequences = optInt('sequences', o.sequences, 1, 1 << 16, 1);
    this.threads = optInt('threads', o.threads, 1, 1024, defaultThreadCount());
    this.batchSize = Math.min(optInt('batchSize', o.batchSize, 1, 1 << 16, 512), this.contextSize);
    this.kvCacheType = optOneOf('kvCacheType', o.kvCacheType, ['f32', 'f16'] as const, 'f32');
    const site = new Error();
    this.#native = owner
      .nativeModel()
      .createContext({
        nCtx: this.contextSize,
        nBatch: this.batchSize,
        nThreads: this.threads,
        nSeqs: this.sequences,
        kvType: this.kvCacheType === 'f16' ? 1 : 0,
      })
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
    this.#scheduler = new StepScheduler({
      nBatch: this.batchSize,
      nCells: this.contextSize,
      native: () => this.#native,
      nativeNow: () => this.#handle,
    });
    this.#seqOwner = {
      context: this,
      contextSize: this.contextSize,
      vocabSize: owner.vocabSize,
      hiddenSize: owner.hiddenSize,
      hasLogits: owner.hasLogits !== false,
      causal: owner.causal !== false,
      mrope: owner.mrope === true,
      scheduler: this.#scheduler,
      model: owner.model,
      native: () => this.#native,
      nativeNow: () => this.#handle,
      forkSequence: (source, n) => this.#fork(source, n),
      sequenceEnded: (seq) => {
        this.#live.delete(seq);
        if (seq === this.#default) this.#default = undefined;
      },
      checkNotDisposed: () => this.#checkNotDisposed(),
    };
  }

  /** A new empty sequence of this context. NO_SEQUENCE_LEFT when `sequences` of them exist already. */
  createSequence(): Sequence {
    this.#checkNotDisposed();
    this.#checkRoom();
    const handle = this.#handle;
    const seq = new Sequence(this.#seqOwner, handle ? this.#call(() => handle.createSequence()) : -1);
    this.#live.add(seq);
    return seq;
  }

  /** Sequences that exist now (created, forked, or the default one). */
  get activeSequences(): number {
    return this.#live.size;
  }

  /** KV cells held by the sequences (a cell shared by forks counts once); 0 before the first evaluation. */
  get cellsUsed(): number {
    return this.#handle && !this.#disposed ? this.#handle.info().cellsUsed : 0;
  }

  /** Steps the scheduler has run (each one forward pass over every sequence that had tokens ready). */
  get steps(): number {
    return this.#scheduler.steps;
  }

  /** Tokens the default sequence holds (the position its next token gets). */
  get position(): number {
    return this.#default?.position ?? 0;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Bytes of native memory the context allocated (KV cells and activations); 0 before it is ready. */
  get memoryBytes(): number {
    return this.#handle && !this.#disposed ? this.#handle.info().memoryBytes : 0;
  }

  /** The default sequence's evaluate (see Sequence.evaluate). */
  evaluate(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    try {
      return this.defaultSequence.evaluate(tokens, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal evaluate on the default sequence into a caller-owned aligned buffer */
  evaluateInto(
    tokens: ArrayLike<number>,
    mode: 'last' | 'all' | 'none',
    out: Float32Array | null,
    signal?: AbortSignal,
    what: 'logits' | 'hidden' = 'logits',
  ): Promise<void> {
    return this.defaultSequence.evaluateInto(tokens, mode, out, signal, what);
  }

  /** Forgets everything the default sequence holds. */
  clear(): void {
    this.truncate(0);
  }

  /** Keeps only the first `position` tokens of the default sequence (for example to rewind a chat turn). */
  truncate(position: number): void {
    this.#checkNotDisposed();
    if (this.#default === undefined && position === 0) return;
    this.defaultSequence.truncate(position);
  }

  /** The sequence the context's own evaluate/position/truncate use, created on first use. */
  get defaultSequence(): Sequence {
    this.#checkNotDisposed();
    this.#default ??= this.createSequence();
    return this.#default;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const reason = new AglmError('DISPOSED', 'The context was disposed during evaluation');
    this.#scheduler.close(reason);
    for (const seq of this.#live) seq.ended();
    this.#live.clear();
    this.#default = undefined;
    this.#handle?.dispose();
    this.#owner.contextEnded(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #fork(source: Sequence, n: number): Sequence {
    this.#checkRoom();
    const handle = this.#handle;
    // A sequence that holds tokens has a native id (its first evaluation made the native context and the sequence).
    const id = n > 0 && handle ? this.#call(() => handle.forkSequence(source.nativeId, n)) : handle ? this.#call(() => handle.createSequence()) : -1;
    const seq = new Sequence(this.#seqOwner, id, id >= 0 ? n : 0, source);
    this.#live.add(seq);
    return seq;
  }

  #checkRoom(): void {
    if (this.#live.size >= this.sequences) {
      throw new AglmError(
        'NO_SEQUENCE_LEFT',
        `The context's ${this.sequences} sequence${this.sequences === 1 ? ' is' : 's are'} all in use; dispose one or create the context with more \`sequences\``,
      );
    }
  }

  #call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw fromNative(e, new Error());
    }
  }

  #checkNotDisposed(): void {
    if (this.#disposed) throw new AglmError('DISPOSED', 'The context was disposed');
  }
}
