// The step scheduler of a context: every sequence's pending evaluation goes into a queue, and each step takes, in one
// forward pass, the next tokens of every queued request that fits: decode tokens first (one token each, so nobody's
// generation waits on a long prompt), then prompt chunks in arrival order with the rest of the batch (chunked prefill).
// A request that needs more KV cells than are free waits while others make progress; when none can, the one whose
// sequence holds the most cells fails with CONTEXT_FULL.
// A step runs on a native worker; the next one starts after the step's continuations (sampling, the next token of
// each generation) have run, so sequences that are ready join it. Aborting or disposing a request in a running step
// stops that step (it is rolled back natively) and the other requests in it simply run again in the next one.
import { AglmError } from '../errors.js';
import { alignedUint32 } from '../buffers/aligned.js';
import { fromNative, type NativeContext, type NativeStepPart } from '../native.js';

/** What the scheduler needs of a sequence. */
export interface ScheduledSequence {
  /** The native sequence id (created before the request is queued). */
  readonly nativeId: number;
  /** Positions the sequence holds. */
  readonly position: number;
  /** Called with the sequence's new length after a step evaluated some of its tokens, or after a rollback. */
  moved(position: number): void;
}

/** 'merge': every merge-th token's output (a vision encoder's merged patches). */
export type OutputMode = 'last' | 'all' | 'none' | 'merge';

export interface StepRequest {
  sequence: ScheduledSequence;
  /** The tokens, in an aligned array the scheduler may read until the request settles. */
  tokens: Uint32Array;
  mode: OutputMode;
  /** 0: logits, 1: hidden states. */
  kind: 0 | 1;
  out: Float32Array | null;
  signal: AbortSignal | undefined;
  /** The sequence's length when the request was made: what it returns to if the request fails. */
  start: number;
  /** Tokens evaluated so far. */
  done: number;
  /** Whole: the tokens must go in one step (a non-causal model's sequence). */
  whole: boolean;
  /** Input rows for some tokens (image embeddings, patches): rows[i] >= 0 makes token i take row rows[i] of data. */
  embd?: { rows: Int32Array; data: Float32Array };
  /** Four rope positions per token (M-RoPE), token after token. */
  ropePos?: Int32Array;
  /** Two grid coordinates per token (vision encoders). */
  gridPos?: Float32Array;
  /** Mode 'merge': tokens per output row. */
  merge?: number;
  resolve: () => void;
  reject: (e: AglmError) => void;
  /** Set when the request was cancelled while its step ran: the reason it fails with once the step settles. */
  cancelled?: AglmError;
  settled?: boolean;
  onAbort?: () => void;
}

export interface SchedulerHost {
  nBatch: number;
  nCells: number;
  /** The native context (creation may still be in flight). */
  native(): Promise<NativeContext>;
  /** The native context if it is ready. */
  nativeNow(): NativeContext | undefined;
}

export class StepScheduler {
  readonly #host: SchedulerHost;
  readonly #queue: StepRequest[] = [];
  #running: StepRequest[] | undefined;
  #scheduled = false;
  #closed: AglmError | undefined;
  /** Steps run so far (for tests and metrics). */
  steps = 0;

  constructor(host: SchedulerHost) {
    this.#host = host;
  }

  /** Requests waiting or running. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues a request; it settles when all its tokens are evaluated, or it fails. */
  submit(req: StepRequest): void {
    if (this.#closed) {
      req.reject(this.#closed);
      return;
    }
    if (req.signal) {
      const signal = req.signal;
      req.onAbort = () => this.cancel(req, new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason }));
      signal.addEventListener('abort', req.onAbort, { once: true });
    }
    this.#queue.push(req);
    this.#kick();
  }

  /**
   * Fails a request with `reason` (abort, dispose) and returns its sequence to where the request started. A request in
   * the running step stops the step; the others in it are evaluated again in the next one.
   */
  cancel(req: StepRequest, reason: AglmError): void {
    if (req.settled) return;
    if (this.#running?.includes(req)) {
      req.cancelled = reason;
      this.#host.nativeNow()?.abortStep();
      return;
    }
    this.#fail(req, reason);
  }

  /** Fails every request (the context is being disposed); later submissions fail with the same error. */
  close(reason: AglmError): void {
    this.#closed = reason;
    for (const req of [...this.#queue]) this.cancel(req, reason);
  }

  #kick(): void {
    if (this.#running || this.#scheduled || this.#queue.length === 0) return;
    this.#scheduled = true;
    // After the continuations of the last step (each generation samples and queues its next token) have run.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#runStep();
    });
  }

  #remove(req: StepRequest): void {
    const i = this.#queue.indexOf(req);
    if (i >= 0) this.#queue.splice(i, 1);
    if (req.signal && req.onAbort) req.signal.removeEventListener('abort', req.onAbort);
  }

  #fail(req: StepRequest, e: AglmError): void {
    if (req.settled) return;
    req.settled = true;
    this.#remove(req);
    const native = this.#host.nativeNow();
    if (native && req.done > 0) {
      try {
        native.truncateSequence(req.sequence.nativeId, req.start);
      } catch {
        // the sequence was freed (disposed): nothing to roll back
      }
    }
    req.sequence.moved(req.start);
    req.reject(e);
  }

  #succeed(req: StepRequest): void {
    req.settled = true;
    this.#remove(req);
    req.resolve();
  }

  /** The parts of the next step: decode tokens first, then prompt chunks in arrival order, within the batch and the free cells. */
  #plan(native: NativeContext): { parts: NativeStepPart[]; reqs: StepRequest[] } {
    const info = native.info();
    let room = this.#host.nBatch;
    let cells = info.nCells - info.cellsUsed;
    const order = [...this.#queue].sort((a, b) => Number(a.tokens.length - a.done > 1) - Number(b.tokens.length - b.done > 1));
    const parts: NativeStepPart[] = [];
    const reqs: StepRequest[] = [];
    const starved: StepRequest[] = [];
    for (const req of order) {
      if (room === 0) break;
      const left = req.tokens.length - req.done;
      if (left > cells) {
        // Not enough free cells now. It waits while the others make progress (one of them may finish and free
        // cells); if nobody can go on, one of the waiting requests fails (below).
        starved.push(req);
        continue;
      }
      if (req.whole && left > room) {
        if (room === this.#host.nBatch) {
          this.#fail(req, new AglmError('INVALID_ARGUMENT', `This model evaluates a sequence in one batch: ${left} tokens do not fit the batch size ${this.#host.nBatch}`));
        }
        continue;
      }
      const count = Math.min(left, room);
      const last = req.done + count === req.tokens.length;
      const out = req.mode === 'all' ? 2 : req.mode === 'merge' ? 3 : req.mode === 'last' && last ? 1 : 0;
      parts.push({
        seq: req.sequence.nativeId,
        tokens: req.tokens,
        offset: req.done,
        count,
        out,
        kind: req.kind,
        buffer: out === 0 ? null : req.out,
        row: req.mode === 'all' ? req.done : req.mode === 'merge' ? req.done / (req.merge ?? 1) : 0,
        ...(req.embd ? { embdRows: req.embd.rows, embd: req.embd.data } : {}),
        ...(req.ropePos ? { ropePos: req.ropePos } : {}),
        ...(req.gridPos ? { gridPos: req.gridPos } : {}),
      });
      reqs.push(req);
      room -= count;
      cells -= count;
    }
    if (parts.length === 0 && starved.length > 0) {
      // The pool is full and no request can take a step: the one whose sequence holds the most cells fails with
      // CONTEXT_FULL (its owner disposing it frees the most room), the others wait: the scheduler plans again after
      // the failure's continuations have run, and fails another only if still none can go on.
      const victim = starved.reduce((a, b) => (b.sequence.position > a.sequence.position ? b : a));
      const left = victim.tokens.length - victim.done;
      this.#fail(
        victim,
        new AglmError(
          'CONTEXT_FULL',
          `The context's KV cells are all in use (${info.cellsUsed} of ${info.nCells}); this sequence needs ${left} more`,
        ),
      );
    }
    return { parts, reqs };
  }

  async #runStep(): Promise<void> {
    if (this.#running || this.#queue.length === 0) return;
    let native: NativeContext;
    try {
      native = await this.#host.native();
    } catch (e) {
      const err = fromNative(e);
      for (const req of [...this.#queue]) this.#fail(req, err);
      return;
    }
    if (this.#running || this.#queue.length === 0) return this.#kick();
    let plan = this.#plan(native);
    let promise: Promise<void> | undefined;
    // (No parts: a request failed for want of cells; #kick plans again once that failure's continuations have run.)
    while (plan.parts.length > 0) {
      try {
        promise = native.step(plan.parts);
        break;
      } catch (e) {
        // A part the core would not take fails its request alone; the rest is planned again.
        const part = (e as { part?: unknown }).part;
        const err = fromNative(e);
        if (typeof part === 'number' && plan.reqs[part]) this.#fail(plan.reqs[part], err);
        else for (const req of plan.reqs) this.#fail(req, err);
        plan = this.#plan(native);
      }
    }
    if (!promise) return this.#kick();
    const { parts, reqs } = plan;
    this.#running = reqs;
    this.steps++;
    let failure: AglmError | undefined;
    try {
      await promise;
    } catch (e) {
      failure = fromNative(e);
    }
    this.#running = undefined;
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i];
      if (req.settled) continue;
      if (req.cancelled) {
        if (!failure) req.done += parts[i].count; // evaluated: the rollback must remove these cells too
        this.#fail(req, req.cancelled);
        continue;
      }
      if (failure && failure.code !== 'ABORTED') {
        this.#fail(req, failure);
        continue;
      }
      if (failure) continue; // stopped because of another request: runs again
      req.done += parts[i].count;
      req.sequence.moved(req.start + req.done);
      if (req.done === req.tokens.length) this.#succeed(req);
    }
    this.#kick();
  }
}

/** An aligned copy of token ids for a request. */
export function requestTokens(tokens: ArrayLike<number>): Uint32Array {
  const a = alignedUint32(tokens.length);
  a.set(tokens);
  return a;
}
