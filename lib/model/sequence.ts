// A sequence: one token history in its context's KV cell pool, with its own position. Evaluations of different
// sequences of a context run concurrently and are batched into shared steps by the context's scheduler; each call is
// all-or-nothing (on abort or error the sequence keeps the positions it had). fork() shares the prefix's cells.
import { AglmError, invalidArgument } from '../errors.js';
import { alignedFloat32, alignedInt32 } from '../buffers/aligned.js';
import { isMediaId, MediaIndex, type ImageEmbedding } from '../vision/media.js';
import { fromNative, type NativeContext } from '../native.js';
import { checkObject, checkTokens, optInt, optOneOf, optSignal } from '../validate.js';
import { requestTokens, type OutputMode, type ScheduledSequence, type StepRequest, type StepScheduler } from './scheduler.js';
import type { Context } from './context.js';
import { complete, generate, type CompletionResult, type GenerateChunk, type GenerateModel, type GenerateOptions, type GenerateReturn, type Prompt } from './generate.js';

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
  /** M-RoPE: each token's 3-D rope position is given with it (images advance positions by their longer side). */
  readonly mrope: boolean;
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
  /**
   * M-RoPE models: per cell, its token id (a virtual id for an image token), its temporal position and the position
   * the next token takes unless it continues the same image (text: t + 1; an image: its start + max(nx, ny)).
   */
  #cellIds: Uint32Array | undefined;
  #cellT: Int32Array | undefined;
  #cellAfter: Int32Array | undefined;

  /** @internal use context.createSequence() or sequence.fork() */
  constructor(owner: SequenceOwner, nativeId = -1, position = 0, forkOf?: Sequence) {
    this.#owner = owner;
    this.#id = nativeId;
    this.#position = position;
    if (forkOf && position > 0) forkOf.#copyCellsTo(this, position);
  }

  #copyCellsTo(to: Sequence, n: number): void {
    if (!this.#cellIds) return;
    to.#reserveCells(n);
    to.#cellIds!.set(this.#cellIds.subarray(0, n));
    to.#cellT!.set(this.#cellT!.subarray(0, n));
    to.#cellAfter!.set(this.#cellAfter!.subarray(0, n));
  }

  #reserveCells(n: number): void {
    if (this.#cellIds && this.#cellIds.length >= n) return;
    const size = Math.max(n, 64, (this.#cellIds?.length ?? 0) * 2);
    const ids = new Uint32Array(size);
    const t = new Int32Array(size);
    const after = new Int32Array(size);
    if (this.#cellIds) {
      ids.set(this.#cellIds);
      t.set(this.#cellT!);
      after.set(this.#cellAfter!);
    }
    this.#cellIds = ids;
    this.#cellT = t;
    this.#cellAfter = after;
  }

  /**
   * M-RoPE positions of `tokens` placed after the sequence's first `start` cells (4 per token: t, h, w, 0); records
   * them for those cells. Text takes (p, p, p); image token i of an nx x ny grid starting at p takes (p, p + i / nx,
   * p + i % nx); the token after an image takes p + max(nx, ny).
   */
  #ropePositions(tokens: ArrayLike<number>, start: number, media: MediaIndex): Int32Array {
    this.#reserveCells(start + tokens.length);
    const ids = this.#cellIds!, ts = this.#cellT!, afters = this.#cellAfter!;
    const out = alignedInt32(4 * tokens.length);
    let prevId = start > 0 ? ids[start - 1] : -1;
    let prevT = start > 0 ? ts[start - 1] : 0;
    let after = start > 0 ? afters[start - 1] : 0;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      let t: number, h: number, w: number;
      if (isMediaId(id)) {
        const m = media.get(id);
        const j = id - m.firstId;
        t = j > 0 && prevId === id - 1 ? prevT : after;
        const row = Math.floor(j / m.nx), col = j % m.nx;
        h = t + row;
        w = t + col;
        after = t + Math.max(m.nx, m.ny);
      } else {
        t = h = w = after;
        after = t + 1;
      }
      out[4 * i] = t;
      out[4 * i + 1] = h;
      out[4 * i + 2] = w;
      out[4 * i + 3] = 0;
      ids[start + i] = id;
      ts[start + i] = t;
      afters[start + i] = after;
      prevId = id;
      prevT = t;
    }
    return out;
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
    media?: readonly ImageEmbedding[],
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
    await this.#submit(site, signal, (start) => {
      const index = media && media.length > 0 ? new MediaIndex(media) : NO_MEDIA;
      const ids = requestTokens(tokens);
      const embd = index.size > 0 ? mediaRows(ids, index) : undefined;
      const ropePos = this.#owner.mrope ? this.#ropePositions(tokens, start, index) : undefined;
      return {
        tokens: ids,
        ...(embd ? { embd } : {}),
        ...(ropePos ? { ropePos } : {}),
        mode,
        kind: what === 'hidden' ? 1 : 0,
        out,
        whole: !this.#owner.causal,
      };
    });
  }

  /**
   * @internal A vision encoder's evaluation: `count` patches (input rows `pixels`, rope positions and grid coordinates
   * 2-D) in one step from empty; the merged outputs (every `merge`-th patch's) go to `out`.
   */
  async encodePatches(
    count: number,
    input: { pixels: Float32Array; ropePos: Int32Array; gridPos: Float32Array | undefined; merge: number },
    out: Float32Array,
    signal?: AbortSignal,
  ): Promise<void> {
    const site = new Error();
    this.#checkUsable();
    if (this.#position !== 0) throw new AglmError('INVALID_ARGUMENT', 'A vision encoder evaluates an image from empty');
    await this.#submit(site, signal, () => {
      const rows = alignedInt32(count);
      for (let i = 0; i < count; i++) rows[i] = i;
      return {
        tokens: requestTokens(new Uint32Array(count)),
        embd: { rows, data: input.pixels },
        ropePos: input.ropePos,
        ...(input.gridPos ? { gridPos: input.gridPos } : {}),
        merge: input.merge,
        mode: 'merge',
        kind: 1,
        out,
        whole: true,
      };
    });
  }

  /**
   * Queues one request built by `build` (given the sequence's length when it starts) once the native context exists,
   * and waits for it; the sequence is busy meanwhile. Errors show the caller's stack (`site`).
   */
  async #submit(
    site: Error,
    signal: AbortSignal | undefined,
    build: (start: number) => Omit<StepRequest, 'sequence' | 'signal' | 'start' | 'done' | 'resolve' | 'reject'>,
  ): Promise<void> {
    this.#busy = true;
    try {
      const native = await this.#owner.native();
      this.#checkNotDisposed();
      if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
      if (this.#id < 0) this.#id = native.createSequence();
      const start = this.#position;
      const fields = build(start);
      await new Promise<void>((resolve, reject) => {
        this.#pending = { ...fields, sequence: this, signal, start, done: 0, resolve, reject };
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

  /**
   * Streams generated text after what the sequence holds (see model.generate for the options). The prompt may be
   * text, token ids, or content parts with images ({ type: 'image', image }) for a model loaded with a projector.
   */
  generate(prompt: Prompt, options?: Omit<GenerateOptions, 'context' | 'sequence'>): AsyncGenerator<GenerateChunk, GenerateReturn> {
    this.#checkNotDisposed();
    return generate(this.#owner.model, prompt, { ...checkObject<GenerateOptions>('generate options', options), sequence: this });
  }

  /** Generates a completion after what the sequence holds. */
  complete(prompt: Prompt, options?: Omit<GenerateOptions, 'context' | 'sequence'>): Promise<CompletionResult> {
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

const NO_MEDIA = new MediaIndex();

/**
 * The input rows of a request's image tokens: rows[i] is token i's row (-1 for text), data the rows they point at
 * (the image's own buffer when the request holds tokens of one image, else the images' rows gathered). Virtual ids
 * are replaced by 0 in `ids` (the row replaces the embedding).
 */
function mediaRows(ids: Uint32Array, index: MediaIndex): { rows: Int32Array; data: Float32Array } | undefined {
  const rows = alignedInt32(ids.length);
  const used: ImageEmbedding[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (!isMediaId(ids[i])) {
      rows[i] = -1;
      continue;
    }
    const m = index.get(ids[i]);
    if (!used.includes(m)) used.push(m);
  }
  if (used.length === 0) return undefined;
  const width = used[0].width;
  if (used.some((m) => m.width !== width)) throw new AglmError('INVALID_ARGUMENT', 'The images of one prompt have embeddings of different widths');
  const base = new Map<ImageEmbedding, number>();
  let data: Float32Array;
  if (used.length === 1) {
    data = used[0].data;
    base.set(used[0], 0);
  } else {
    data = alignedFloat32(used.reduce((n, m) => n + m.nTokens, 0) * width);
    let at = 0;
    for (const m of used) {
      data.set(m.data, at * width);
      base.set(m, at);
      at += m.nTokens;
    }
  }
  for (let i = 0; i < ids.length; i++) {
    if (!isMediaId(ids[i])) continue;
    const m = index.get(ids[i]);
    rows[i] = base.get(m)! + (ids[i] - m.firstId);
    ids[i] = 0;
  }
  return { rows, data };
}
