// The serving engine: one model, one context whose KV cell pool is shared by `parallel` sequences, and the admission in
// front of it (a bounded queue of requests waiting for a sequence). Chat, completion and embedding requests run here
// whatever carries them (HTTP with SSE, gRPC, batch files); each generation runs on sequences of the shared context,
// so requests are batched into the same steps. Cancelling a request (client gone, shutdown) stops its sequence at
// once, also during prompt processing, and frees its cells.
import { basename } from 'node:path';
import { LeadStripper } from '../chat/chat-session.js';
import { ToolCallFilter, toolCallGrammar, type ChatTool, type ChatToolCall, type ToolCallStyle } from '../chat/tools.js';
import { AglmError } from '../errors.js';
import { Grammar } from '../grammar/index.js';
import { imageParts } from '../chat/chat-template.js';
import type { ImageEmbedding } from '../vision/media.js';
import type { ImagePart } from '../vision/prompt.js';
import type { Context } from '../model/context.js';
import { generate, type StopReason } from '../model/generate.js';
import type { Model } from '../model/model.js';
import type { Sequence } from '../model/sequence.js';
import { checkObject, optInt, optOneOf } from '../validate.js';
import { ApiError, badRequest, toApiError } from './api-error.js';
import { MetricsRegistry, type Counter, type Histogram } from './metrics.js';
import type { ChatRequestSpec, CompletionRequestSpec, EmbeddingRequestSpec, SamplingSpec } from './requests.js';

export interface EngineOptions {
  /** Sequences generating at once (requests, or choices of a request with n > 1). Default 4. */
  parallel?: number;
  /** KV cells the sequences share (any one may use them all). Default: the model's default context size. */
  contextSize?: number;
  /** Most tokens per step. Default 512. */
  batchSize?: number;
  threads?: number;
  kvCacheType?: 'f32' | 'f16';
  /** Requests that may wait for a sequence; more are refused with 503 and Retry-After. Default 64. */
  maxQueue?: number;
  /** The model id clients name (/v1/models). Default: the file name without .gguf. */
  modelName?: string;
  /**
   * Finished requests whose KV cells are kept for later requests that start with the same tokens (a chat's next turn,
   * a shared system prompt, the same screenshot), as llama.cpp's server reuses its slots' prompts: the longest match
   * is forked (cells shared, not copied) and only the rest is evaluated; `usage.prompt_tokens_details.cached_tokens`
   * counts what was reused. Least recently used entries go first, also when their cells are needed. Default: as many
   * as `parallel`; 0 turns it off.
   */
  promptCache?: number;
  /** Most images in one chat request (400 beyond). Default 8. */
  maxImages?: number;
  /** Most bytes of one encoded image (400 beyond). Default 32 MiB. */
  maxImageBytes?: number;
  /** Most pixels of one decoded image (400 beyond). Default 50 megapixels. */
  maxImagePixels?: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ChoiceResult {
  index: number;
  /** Prompt tokens reused from the prompt cache. */
  cachedTokens?: number;
  /** The reply's text (without its tool calls). */
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  /** The tool calls the reply made (chat with tools). */
  toolCalls?: ChatToolCall[];
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Prompt tokens whose KV cells came from the prompt cache (not evaluated again). */
  cachedTokens: number;
}

/** A finished request's sequence, kept with the tokens its cells hold. */
interface CacheEntry {
  seq: Sequence;
  tokens: Uint32Array;
}

/** llama.cpp's timings: prompt processing and generation, with rates. */
export interface Timings {
  /** Prompt tokens evaluated (those from the prompt cache not counted: cacheN). */
  promptN: number;
  cacheN: number;
  promptMs: number;
  promptPerSecond: number;
  predictedN: number;
  predictedMs: number;
  predictedPerSecond: number;
}

export interface GenerationResult {
  choices: ChoiceResult[];
  usage: Usage;
  timings: Timings;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Each piece of text as it is generated (may be empty while a character or a stop string is pending). */
  onText?: (index: number, text: string) => void;
  /** A choice's tool calls, once its reply is complete (before onFinish). */
  onToolCalls?: (index: number, calls: ChatToolCall[]) => void;
  /** A choice ended (streaming writes its finish_reason). */
  onFinish?: (index: number, reason: FinishReason) => void;
}

interface Lease {
  release(): void;
}

interface Waiter {
  n: number;
  /** KV cells the request reserves (see #generation). */
  cells: number;
  resolve: (lease: Lease) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What a chat adds to a generation: the template's reply lead, its end-of-turn tokens, the tools offered, its images. */
interface ChatFrame {
  lead: string;
  stopTokens: ReadonlySet<number> | undefined;
  tools?: { style: ToolCallStyle; tools: ChatTool[] };
  media?: readonly ImageEmbedding[];
}

function finishReason(r: StopReason): FinishReason {
  return r === 'eos' || r === 'stop' ? 'stop' : 'length';
}

export class ServingEngine {
  readonly model: Model;
  readonly name: string;
  readonly parallel: number;
  readonly maxQueue: number;
  readonly context: Context;
  readonly metrics = new MetricsRegistry();
  readonly created = Math.floor(Date.now() / 1000);
  readonly requests: Counter;
  readonly #promptTokens: Counter;
  readonly #generatedTokens: Counter;
  readonly #ttft: Histogram;
  /** Grammars of required tool calls by style, choice and tools (clients send the same tools with each request). */
  readonly #toolGrammars = new Map<string, Grammar>();
  readonly #imageLimits: { maxImages: number; maxBytes: number; maxPixels: number };
  /** The prompt cache, least recently used first. */
  readonly #cache: CacheEntry[] = [];
  readonly #cacheSize: number;
  readonly #cachedTokens: Counter;
  readonly #itl: Histogram;
  #free: number;
  /** KV cells reserved by the requests running (prompt plus max_tokens per choice). */
  #reserved = 0;
  readonly #waiting: Waiter[] = [];
  readonly #running = new Set<AbortController>();
  #closing: AglmError | undefined;

  constructor(model: Model, options?: EngineOptions) {
    const o = checkObject<EngineOptions>('server options', options);
    this.model = model;
    this.parallel = optInt('parallel', o.parallel, 1, 1024, 4);
    this.#imageLimits = {
      maxImages: optInt('maxImages', o.maxImages, 0, 1024, 8),
      maxBytes: optInt('maxImageBytes', o.maxImageBytes, 1024, 1 << 30, 32 << 20),
      maxPixels: optInt('maxImagePixels', o.maxImagePixels, 1, 1 << 30, 50_000_000),
    };
    this.maxQueue = optInt('maxQueue', o.maxQueue, 0, 1 << 20, 64);
    if (o.modelName !== undefined && (typeof o.modelName !== 'string' || o.modelName.length === 0)) {
      throw new AglmError('INVALID_ARGUMENT', `Expected a non-empty string for modelName but received ${String(o.modelName)}`);
    }
    this.name = o.modelName ?? basename(model.path).replace(/\.gguf$/i, '');
    this.#cacheSize = optInt('promptCache', o.promptCache, 0, 1024, this.parallel);
    this.context = model.createContext({
      contextSize: o.contextSize,
      sequences: this.parallel + this.#cacheSize,
      batchSize: o.batchSize,
      threads: o.threads,
      kvCacheType: optOneOf('kvCacheType', o.kvCacheType, ['f32', 'f16'] as const, 'f32'),
    });
    this.#free = this.parallel;
    const m = this.metrics;
    this.requests = m.counter('aglm_requests_total', 'Requests answered, by endpoint and HTTP status.');
    this.#promptTokens = m.counter('aglm_prompt_tokens_total', 'Prompt tokens processed.');
    this.#generatedTokens = m.counter('aglm_generated_tokens_total', 'Tokens generated.');
    m.gauge('aglm_queue_depth', 'Requests waiting for a sequence.', () => this.queueDepth);
    m.gauge('aglm_active_sequences', 'Sequences in use by requests.', () => this.activeSequences);
    m.gauge('aglm_prompt_cache_entries', 'Finished requests whose KV cells are kept for reuse.', () => this.#cache.length);
    m.gauge('aglm_prompt_cache_tokens', 'Tokens the prompt cache holds (cells shared with forks counted each time).', () => this.promptCacheTokens);
    this.#cachedTokens = m.counter('aglm_prompt_cached_tokens_total', 'Prompt tokens reused from the prompt cache.');
    m.gauge('aglm_kv_cells_used', 'KV cells held by sequences.', () => (this.context.disposed ? 0 : this.context.cellsUsed));
    m.gauge('aglm_kv_cells_total', 'KV cells of the shared context.', () => this.context.contextSize);
    m.gauge('aglm_kv_cells_reserved', 'KV cells the running requests reserved (prompt plus max_tokens per choice).', () => this.#reserved);
    m.gauge('aglm_requests_in_flight', 'Requests being generated.', () => this.#running.size);
    this.#ttft = m.histogram('aglm_time_to_first_token_seconds', 'From a request arriving to its first generated token.', SECONDS_BUCKETS);
    this.#itl = m.histogram('aglm_inter_token_latency_seconds', 'Between consecutive tokens of a choice.', SECONDS_BUCKETS);
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  get queueDepth(): number {
    return this.#waiting.length;
  }

  /** Sequences running requests (the prompt cache's not counted). */
  get activeSequences(): number {
    return this.context.disposed ? 0 : this.context.activeSequences - this.#cache.length;
  }

  /** Tokens held by the prompt cache's sequences. */
  get promptCacheTokens(): number {
    return this.#cache.reduce((n, e) => n + e.tokens.length, 0);
  }

  /** Frees the prompt cache's sequences (their cells return unless a running request shares them). */
  clearPromptCache(): void {
    for (const e of this.#cache.splice(0)) e.seq.dispose();
  }

  /**
   * The cached sequence sharing the longest prefix with `prompt`, leaving at least 1 token to evaluate; a match is
   * taken when it is at least 16 tokens or all of the prompt but its last token (a BOS in common is not worth a fork).
   */
  #lookup(prompt: Uint32Array): { entry: CacheEntry; common: number } | undefined {
    let best: { entry: CacheEntry; common: number } | undefined;
    for (const entry of this.#cache) {
      const t = entry.tokens;
      const n = Math.min(t.length, prompt.length - 1);
      let i = 0;
      while (i < n && t[i] === prompt[i]) i++;
      if ((i >= 16 || i === prompt.length - 1) && i > 0 && (!best || i > best.common)) best = { entry, common: i };
    }
    if (best) {
      // Most recently used last.
      this.#cache.splice(this.#cache.indexOf(best.entry), 1);
      this.#cache.push(best.entry);
    }
    return best;
  }

  /** Keeps a finished sequence (holding `tokens`), dropping the least recently used entries beyond the cache size. */
  #remember(seq: Sequence, tokens: Uint32Array): boolean {
    if (this.#cacheSize === 0 || this.#closing || seq.disposed || tokens.length === 0 || seq.position !== tokens.length) return false;
    // An entry whose tokens this one starts with holds nothing more: replace it.
    for (let i = this.#cache.length - 1; i >= 0; i--) {
      const old = this.#cache[i].tokens;
      if (old.length <= tokens.length && old.every((x, k) => tokens[k] === x)) this.#cache.splice(i, 1)[0].seq.dispose();
    }
    this.#cache.push({ seq, tokens });
    while (this.#cache.length > this.#cacheSize) this.#cache.shift()!.seq.dispose();
    this.#evict();
    return true;
  }

  /** Drops cache entries (oldest first) while they and the running requests' reservations exceed the pool. */
  #evict(): void {
    let held = this.promptCacheTokens;
    while (this.#cache.length > 0 && held + this.#reserved > this.contextSize) {
      const e = this.#cache.shift()!;
      held -= e.tokens.length;
      e.seq.dispose();
    }
  }

  /** A chat completion: the messages rendered with the model's chat template, each choice ending at the end of turn. */
  async chat(spec: ChatRequestSpec, options: RunOptions = {}): Promise<GenerationResult> {
    const template = this.model.chatTemplate;
    const tools = spec.tools;
    const images = await this.#images(spec, options.signal);
    let prompt: Uint32Array;
    try {
      prompt = template.tokenize(spec.messages, { addGenerationPrompt: true, tools, images });
    } catch (e) {
      throw toApiError(e);
    }
    const lead = template.replyFrame(spec.messages, tools).lead;
    const stopTokens = new Set(template.endOfTurnTokens(spec.messages, tools));
    let sampling = spec.sampling;
    const choice = spec.toolChoice;
    if (tools.length > 0 && choice !== 'auto' && choice !== 'none') {
      // A required call: a grammar of the template's call syntax with each tool's arguments schema.
      const name = typeof choice === 'object' ? choice.function.name : undefined;
      const key = `${template.toolStyle}:${name ?? ''}:${JSON.stringify(tools)}`;
      let grammar = this.#toolGrammars.get(key);
      if (!grammar) {
        try {
          grammar = new Grammar(toolCallGrammar(template.toolStyle, tools, name));
        } catch (e) {
          if (e instanceof AglmError && e.code === 'INVALID_GRAMMAR') throw badRequest(`A tool's parameters: ${e.message}`, 'tools', 'invalid_grammar');
          throw e;
        }
        if (this.#toolGrammars.size >= 32) this.#toolGrammars.delete(this.#toolGrammars.keys().next().value!);
        this.#toolGrammars.set(key, grammar);
      }
      sampling = { ...sampling, grammar };
    }
    const toolSpec = tools.length > 0 ? { style: template.toolStyle, tools } : undefined;
    return this.#generation([prompt], { ...spec, sampling }, options, { lead, stopTokens, param: 'messages', tools: toolSpec, media: images });
  }

  /** The rows of a chat request's images (decoded from their data: URIs, cached by pixels), within the limits. */
  async #images(spec: ChatRequestSpec, signal: AbortSignal | undefined): Promise<ImageEmbedding[]> {
    const parts = imageParts(spec.messages) as ImagePart[];
    if (parts.length === 0) return [];
    const lim = this.#imageLimits;
    if (parts.length > lim.maxImages) throw badRequest(`The request has ${parts.length} images; at most ${lim.maxImages} are accepted`, 'messages', 'too_many_images');
    const out: ImageEmbedding[] = [];
    for (const part of parts) {
      try {
        out.push(await this.model.encodeImage(part.image, { signal, maxBytes: lim.maxBytes, maxPixels: lim.maxPixels }));
      } catch (e) {
        if (e instanceof AglmError && e.code === 'INVALID_IMAGE') throw badRequest(e.message, 'messages', 'invalid_image');
        if (e instanceof AglmError && e.code === 'NO_PROJECTOR') throw badRequest(e.message, 'messages', 'unsupported_content');
        throw toApiError(e);
      }
    }
    return out;
  }

  /** A text completion of one or more prompts (text or token ids), n choices each. */
  async complete(spec: CompletionRequestSpec, options: RunOptions = {}): Promise<GenerationResult> {
    const prompts = spec.prompts.map((p) => (typeof p === 'string' ? this.model.tokenize(p) : Uint32Array.from(p)));
    return this.#generation(prompts, spec, options, { lead: '', stopTokens: undefined, param: 'prompt' });
  }

  /** Embeddings as model.embed computes them (each input in a context of its own), one sequence of the pool's room. */
  async embed(spec: EmbeddingRequestSpec, options: { signal?: AbortSignal } = {}): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
    const lease = await this.#acquire(1, 0, options.signal);
    const run = this.#track(options.signal);
    try {
      const promptTokens = spec.inputs.reduce((n, i) => n + (typeof i === 'string' ? this.model.tokenize(i).length : i.length), 0);
      const vectors = await this.model.embed(spec.inputs, { signal: run.signal });
      this.#promptTokens.inc({}, promptTokens);
      return { vectors, promptTokens };
    } catch (e) {
      throw toApiError(e);
    } finally {
      this.#untrack(run);
      lease.release();
    }
  }

  tokenize(content: string, addSpecial: boolean, parseSpecial: boolean): number[] {
    return Array.from(this.model.tokenize(content, { addSpecial, special: parseSpecial }));
  }

  detokenize(tokens: number[]): string {
    return this.model.detokenize(tokens);
  }

  /** A token's text, for /tokenize's with_pieces. */
  piece(id: number): string {
    return this.model.detokenize([id], { special: true });
  }

  /**
   * Stops admitting requests; those waiting fail at once. In-flight ones may finish until `deadlineMs` has passed;
   * then they are cancelled. Resolves when none is left.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    if (!this.#closing) {
      this.#closing = new AglmError('DISPOSED', 'The server is shutting down');
      for (const w of [...this.#waiting]) this.#rejectWaiter(w, new ApiError(503, 'server_error', 'The server is shutting down', { code: 'shutting_down' }));
    }
    const until = Date.now() + deadlineMs;
    while (this.#running.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.#running) c.abort(this.#closing);
    while (this.#running.size > 0) await new Promise((r) => setTimeout(r, 5));
    this.clearPromptCache();
    this.context.dispose();
  }

  // ---- admission --------------------------------------------------------------------------------------------

  /**
   * A lease on `n` sequences and `cells` KV cells, now or after the requests ahead of it (first come, first served);
   * a full queue is a 503. Reserving the cells a request will fill (its prompt and its max_tokens per choice) keeps
   * requests that state max_tokens from running out of cells half way; one without max_tokens reserves its prompt and
   * one token per choice and may still find the pool full later (a 503 kv_cache_full, as llama.cpp's server would).
   */
  #acquire(n: number, cells: number, signal: AbortSignal | undefined): Promise<Lease> {
    if (this.#closing) return Promise.reject(new ApiError(503, 'server_error', 'The server is shutting down', { code: 'shutting_down' }));
    if (n > this.parallel) return Promise.reject(badRequest(`n is ${n}; this server generates at most ${this.parallel} at once`, 'n'));
    if (signal?.aborted) return Promise.reject(toApiError(new AglmError('ABORTED', 'aborted')));
    cells = Math.min(cells, this.contextSize);
    if (this.#waiting.length === 0 && this.#fits(n, cells)) return Promise.resolve(this.#take(n, cells));
    if (this.#waiting.length >= this.maxQueue) {
      return Promise.reject(
        new ApiError(503, 'overloaded_error', `The server is busy: ${this.parallel} sequences in use and ${this.#waiting.length} requests waiting`, {
          code: 'overloaded',
          retryAfter: 1,
        }),
      );
    }
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = { n, cells, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => this.#rejectWaiter(w, toApiError(new AglmError('ABORTED', 'aborted', { cause: signal.reason })));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiting.push(w);
    });
  }

  #fits(n: number, cells: number): boolean {
    return this.#free >= n && this.#reserved + cells <= this.contextSize;
  }

  #take(n: number, cells: number): Lease {
    this.#free -= n;
    this.#reserved += cells;
    this.#evict();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#free += n;
        this.#reserved -= cells;
        this.#wake();
      },
    };
  }

  #wake(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0].n, this.#waiting[0].cells)) {
      const w = this.#waiting.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.resolve(this.#take(w.n, w.cells));
    }
  }

  #rejectWaiter(w: Waiter, e: unknown): void {
    const i = this.#waiting.indexOf(w);
    if (i < 0) return;
    this.#waiting.splice(i, 1);
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.reject(e);
  }

  /** A controller for one run: aborted by the caller's signal or by shutdown. */
  #track(signal: AbortSignal | undefined): AbortController {
    const c = new AbortController();
    if (signal) {
      if (signal.aborted) c.abort(signal.reason);
      else signal.addEventListener('abort', () => c.abort(signal.reason), { once: true, signal: c.signal });
    }
    this.#running.add(c);
    return c;
  }

  #untrack(c: AbortController): void {
    this.#running.delete(c);
    if (!c.signal.aborted) c.abort(); // drops the listener on the caller's signal
  }

  // ---- generation ------------------------------------------------------------------------------------------

  async #generation(
    prompts: Uint32Array[],
    spec: { n: number; sampling: SamplingSpec },
    options: RunOptions,
    chat: ChatFrame & { param: 'messages' | 'prompt' },
  ): Promise<GenerationResult> {
    const arrived = performance.now();
    for (const p of prompts) {
      if (p.length === 0) throw badRequest('The prompt has no tokens', chat.param);
      if (p.length >= this.contextSize) {
        throw badRequest(
          `This model's context holds ${this.contextSize} tokens, but the prompt has ${p.length} tokens (with at least 1 to generate)`,
          chat.param,
          'context_length_exceeded',
        );
      }
    }
    const n = spec.n * prompts.length;
    // Cells this request will fill: each prompt once (forks share it), then max_tokens per choice (1 when unstated).
    const perChoice = spec.sampling.maxTokens ?? 1;
    const cells = prompts.reduce((sum, p) => sum + Math.min(this.contextSize, p.length + spec.n * perChoice), 0);
    const lease = await this.#acquire(n, cells, options.signal);
    const run = this.#track(options.signal);
    const choices: ChoiceResult[] = [];
    let firstToken = 0;
    const t0 = performance.now();
    try {
      await Promise.all(
        prompts.map(async (prompt, p) => {
          const got = await this.#choices(prompt, spec.n, p * spec.n, spec.sampling, chat, run.signal, options, () => {
            if (firstToken === 0) {
              firstToken = performance.now();
              this.#ttft.observe((firstToken - arrived) / 1000);
            }
          });
          choices.push(...got);
        }),
      );
    } catch (e) {
      if (e instanceof AglmError && e.code === 'ABORTED' && this.#closing && !options.signal?.aborted) {
        throw new ApiError(503, 'server_error', 'The server shut down before the request finished', { code: 'shutting_down', cause: e });
      }
      if (e instanceof AglmError && e.code === 'CONTEXT_FULL') {
        // The pool was full of other sequences' cells (a sequence's own limit was checked above): try again later.
        throw new ApiError(503, 'overloaded_error', `The server's KV cells are all in use: ${e.message}`, { code: 'kv_cache_full', retryAfter: 1, cause: e });
      }
      throw toApiError(e);
    } finally {
      this.#untrack(run);
      lease.release();
    }
    const t1 = performance.now();
    choices.sort((a, b) => a.index - b.index);
    const promptTokens = prompts.reduce((s, p) => s + p.length, 0);
    const completionTokens = choices.reduce((s, c) => s + c.tokens.length, 0);
    const cachedTokens = choices.reduce((s, c) => s + (c.cachedTokens ?? 0), 0);
    this.#promptTokens.inc({}, promptTokens);
    this.#generatedTokens.inc({}, completionTokens);
    const promptMs = (firstToken || t1) - t0;
    const predictedMs = firstToken ? t1 - firstToken : 0;
    return {
      choices,
      usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens },
      timings: {
        promptN: promptTokens - cachedTokens,
        cacheN: cachedTokens,
        promptMs,
        promptPerSecond: promptMs > 0 ? ((promptTokens - cachedTokens) * 1000) / promptMs : 0,
        predictedN: completionTokens,
        predictedMs,
        predictedPerSecond: predictedMs > 0 ? (completionTokens * 1000) / predictedMs : 0,
      },
    };
  }

  /**
   * n choices of one prompt. With n > 1 the prompt (but its last token) is evaluated once and its cells shared by
   * forks; each choice then draws its own tokens (seed + i when a seed was given).
   */
  async #choices(
    prompt: Uint32Array,
    n: number,
    base: number,
    sampling: SamplingSpec,
    chat: ChatFrame,
    signal: AbortSignal,
    options: RunOptions,
    onFirstToken: () => void,
  ): Promise<ChoiceResult[]> {
    const hit = prompt.length > 1 ? this.#lookup(prompt) : undefined;
    let first: Sequence;
    let cached = 0;
    if (hit) {
      first = hit.entry.seq.fork();
      first.truncate(hit.common);
      cached = hit.common;
      this.#cachedTokens.inc({}, cached);
    } else first = this.context.createSequence();
    const seqs: Sequence[] = [first];
    const kept = new Set<Sequence>();
    try {
      const shared = prompt.length > 1 && (n > 1 || cached > 0) ? prompt.subarray(0, prompt.length - 1) : undefined;
      if (shared) {
        if (shared.length > cached) await seqs[0].evaluateInto(shared.subarray(cached), 'none', null, signal, 'logits', chat.media);
        while (seqs.length < n) seqs.push(seqs[0].fork());
      } else {
        while (seqs.length < n) seqs.push(this.context.createSequence());
      }
      const { maxTokens, stop, ...sampler } = sampling;
      return await Promise.all(
        seqs.map(async (seq, i) => {
          const index = base + i;
          const gen = generate(
            this.model,
            shared ? prompt.subarray(prompt.length - 1) : prompt,
            {
              ...sampler,
              seed: sampler.seed === undefined ? undefined : (sampler.seed + i) % Number.MAX_SAFE_INTEGER,
              maxTokens: maxTokens ?? this.contextSize,
              stop,
              signal,
              sequence: seq,
            },
            { history: shared, stopTokens: chat.stopTokens, media: chat.media },
          );
          const lead = new LeadStripper(chat.lead);
          const filter = chat.tools ? new ToolCallFilter(chat.tools.style, chat.tools.tools) : undefined;
          let text = '';
          const tokens: number[] = [];
          let last = 0;
          for (;;) {
            const r = await gen.next();
            if (r.done) {
              let reason = finishReason(r.value.stopReason);
              let toolCalls: ChatToolCall[] | undefined;
              if (filter) {
                const parsed = filter.finish();
                const rest = lead.push(parsed.rest);
                if (rest) {
                  text += rest;
                  options.onText?.(index, rest);
                }
                if (parsed.calls.length > 0) {
                  toolCalls = parsed.calls;
                  text = text.trimEnd();
                  reason = 'tool_calls';
                  options.onToolCalls?.(index, toolCalls);
                }
              }
              options.onFinish?.(index, reason);
              // The first choice's sequence holds the prompt and its tokens up to the last one: keep it for reuse.
              if (i === 0) {
                const held = new Uint32Array(seq.position);
                held.set(prompt.subarray(0, Math.min(prompt.length, held.length)));
                if (held.length > prompt.length) held.set(tokens.slice(0, held.length - prompt.length), prompt.length);
                if (this.#remember(seq, held)) kept.add(seq);
              }
              return { index, text, tokens, finishReason: reason, cachedTokens: i === 0 ? cached : 0, ...(toolCalls ? { toolCalls } : {}) };
            }
            if (r.value.token >= 0) {
              const now = performance.now();
              if (tokens.length === 0) onFirstToken();
              else this.#itl.observe((now - last) / 1000);
              last = now;
              tokens.push(r.value.token);
            }
            const piece = lead.push(filter ? filter.push(r.value.text) : r.value.text);
            text += piece;
            options.onText?.(index, piece);
          }
        }),
      );
    } finally {
      for (const s of seqs) if (!kept.has(s)) s.dispose();
    }
  }
}
