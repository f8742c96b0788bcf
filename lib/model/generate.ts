// Text generation: evaluate the prompt, then sample and evaluate one token at a time, streaming text at UTF-8
// character boundaries and stopping on end-of-generation tokens, stop strings, maxTokens, or a full context.
import { AglmError, invalidArgument } from '../errors.js';
import { alignedFloat32 } from '../buffers/aligned.js';
import { Sampler, validateSamplerOptions, type SamplerOptions } from '../sampler/index.js';
import { Grammar, GrammarMatcher, toGrammar } from '../grammar/index.js';
import { checkObject, checkTokens, optInt, optSignal } from '../validate.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { Context, ContextOptions } from './context.js';
import type { Sequence } from './sequence.js';
import type { ImageInput } from '../vision/image.js';
import { isMediaId, MediaIndex, type ImageEmbedding } from '../vision/media.js';
import { checkContentParts, isContentParts, partsToPrompt, type ContentPart } from '../vision/prompt.js';

/** A prompt: text, token ids, or content parts (text and images; images need a model loaded with a projector). */
export type Prompt = string | ArrayLike<number> | ContentPart[];

export interface GenerateOptions extends SamplerOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Strings that end the generation; the text stops before the first one found. */
  stop?: string | string[];
  signal?: AbortSignal;
  /** Prepend BOS to a text prompt. Default: the model's tokenizer setting. */
  addBos?: boolean;
  /** Continue in this context's default sequence (after what it holds) instead of a fresh context. */
  context?: Context;
  /** Continue in this sequence (after what it holds) instead of a fresh context (sequence.generate() sets it). */
  sequence?: Sequence;
  /** Threads for the context generate creates. */
  threads?: number;
  /**
   * Hold the output to a grammar: a Grammar, or GBNF text (llama.cpp's format). The text generated is then always a
   * prefix of a sentence of the grammar, and a whole one when the generation ends by end of generation (stopReason
   * 'eos'); 'maxTokens' or 'stop' can cut it short.
   */
  grammar?: Grammar | string;
  /** Hold the output to JSON valid under this JSON schema (compiled once to a grammar; see Grammar.fromJsonSchema). */
  jsonSchema?: unknown;
}

/** What generation needs from a model. */
export interface GenerateModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly tokenizer: Tokenizer;
  tokenize(text: string, options?: { addBos?: boolean }): Uint32Array;
  createContext(options?: ContextOptions): Context;
  /** The image's rows for the text model (a model with a vision projector). */
  encodeImage?(image: ImageInput, options?: { signal?: AbortSignal }): Promise<ImageEmbedding>;
}

/** What a generation returns after its last chunk. */
export interface GenerateReturn {
  stopReason: StopReason;
  timings: CompletionTimings;
}

export interface GenerateChunk {
  /** Text completed by this token (may be empty while a multi-byte character or a possible stop string is pending). */
  text: string;
  /** The token generated; -1 on a final chunk that only carries text held back until the end. */
  token: number;
}

/** 'eos': an end-of-generation token, or a grammar that allows nothing more; 'stop': a stop string. */
export type StopReason = 'maxTokens' | 'eos' | 'stop' | 'contextFull';

export interface CompletionTimings {
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generationMs: number;
  /** Prompt tokens per second. */
  promptTokensPerSecond: number;
  /** Generated tokens per second. */
  tokensPerSecond: number;
}

export interface CompletionResult {
  text: string;
  tokens: number[];
  stopReason: StopReason;
  timings: CompletionTimings;
}

interface Resolved {
  maxTokens: number;
  stop: string[];
  signal: AbortSignal | undefined;
  addBos: boolean | undefined;
  sequence: Sequence | undefined;
  threads: number | undefined;
  sampler: SamplerOptions;
  grammar: Grammar | undefined;
}

function resolveOptions(options: GenerateOptions | undefined): Resolved {
  const o = checkObject<GenerateOptions>('generate options', options);
  const { maxTokens, stop, signal, addBos, context, sequence, threads, grammar, jsonSchema, ...sampler } = o;
  let stops: string[] = [];
  if (typeof stop === 'string') stops = [stop];
  else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) stops = stop;
  else if (stop !== undefined) throw invalidArgument('stop', 'a string or an array of strings', stop);
  if (addBos !== undefined && typeof addBos !== 'boolean') throw invalidArgument('addBos', 'a boolean', addBos);
  if (context !== undefined && (typeof context !== 'object' || context === null || !('defaultSequence' in context))) {
    throw invalidArgument('context', 'a Context from model.createContext()', context);
  }
  if (sequence !== undefined && (typeof sequence !== 'object' || sequence === null || !('evaluateInto' in sequence) || !('fork' in sequence))) {
    throw invalidArgument('sequence', 'a Sequence from context.createSequence()', sequence);
  }
  if (sequence !== undefined && context !== undefined) throw invalidArgument('context', 'no context together with sequence', context);
  validateSamplerOptions(sampler);
  if (grammar !== undefined && jsonSchema !== undefined) throw invalidArgument('jsonSchema', 'no jsonSchema together with grammar', jsonSchema);
  return {
    maxTokens: optInt('maxTokens', maxTokens, 0, 1 << 24, 256),
    stop: stops.filter((s) => s.length > 0),
    signal: optSignal('signal', signal),
    addBos,
    sequence: sequence ?? context?.defaultSequence,
    threads: threads === undefined ? undefined : optInt('threads', threads, 1, 1024, 1),
    sampler,
    grammar: grammar !== undefined ? toGrammar('grammar', grammar) : jsonSchema !== undefined ? schemaGrammar(jsonSchema) : undefined,
  };
}

// The last few schemas' grammars, so that a server answering the same response_format compiles it once.
const schemaGrammars = new Map<string, Grammar>();

function schemaGrammar(schema: unknown): Grammar {
  const key = JSON.stringify(schema);
  let g = key === undefined ? undefined : schemaGrammars.get(key);
  if (!g) {
    g = Grammar.fromJsonSchema(schema);
    if (key !== undefined) {
      if (schemaGrammars.size >= 32) schemaGrammars.delete(schemaGrammars.keys().next().value!);
      schemaGrammars.set(key, g);
    }
  }
  return g;
}

/** Holds back text that could be the start of a stop string; reports a stop string once complete. */
class StopMatcher {
  #pending = '';
  constructor(private readonly stops: string[]) {}

  /** Adds text; returns the text safe to emit, and whether a stop string was reached. */
  push(text: string): { text: string; stopped: boolean } {
    this.#pending += text;
    if (this.stops.length === 0) {
      const out = this.#pending;
      this.#pending = '';
      return { text: out, stopped: false };
    }
    let first = -1;
    for (const s of this.stops) {
      const at = this.#pending.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const out = this.#pending.slice(0, first);
      this.#pending = '';
      return { text: out, stopped: true };
    }
    let keep = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.#pending.length); n > keep; n--) {
        if (this.#pending.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    const out = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return { text: out, stopped: false };
  }

  flush(): string {
    const out = this.#pending;
    this.#pending = '';
    return out;
  }
}

interface Run {
  chunks: AsyncGenerator<GenerateChunk, GenerateReturn>;
}

/** @internal What a chat session adds to a generation that continues its conversation. */
export interface GenerateInternals {
  /** Tokens already in the context before the prompt: the penalties see them as a fresh run over all of them would. */
  history?: ArrayLike<number>;
  /** More ids that end the generation like end-of-generation tokens (a template's end-of-turn tokens). */
  stopTokens?: ReadonlySet<number>;
  /** The images whose virtual ids the prompt's tokens hold (a chat turn's tokens with images). */
  media?: readonly ImageEmbedding[];
}

type PromptSource = { tokens: ArrayLike<number>; media: readonly ImageEmbedding[] } | { parts: ContentPart[] };

/** Token ids valid for the vocabulary, or virtual ids of the images in `media`. */
function checkTokensWithMedia(what: string, tokens: ArrayLike<number>, vocabSize: number, media: readonly ImageEmbedding[]): ArrayLike<number> {
  if (media.length === 0) return checkTokens(what, tokens, vocabSize);
  const index = new MediaIndex(media);
  const plain: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (isMediaId(t)) index.get(t, what);
    else plain.push(t);
  }
  checkTokens(what, plain, vocabSize);
  return tokens;
}

function start(model: GenerateModel, prompt: Prompt, options: GenerateOptions | undefined, internals: GenerateInternals = {}): Run {
  const o = resolveOptions(options);
  let source: PromptSource;
  if (typeof prompt === 'string') source = { tokens: model.tokenize(prompt, { addBos: o.addBos }), media: [] };
  else if (isContentParts(prompt)) {
    checkContentParts(prompt, 'prompt');
    source = { parts: prompt };
  } else source = { tokens: checkTokensWithMedia('prompt', prompt, model.vocabSize, internals.media ?? []), media: internals.media ?? [] };
  if ('tokens' in source && source.tokens.length === 0) throw invalidArgument('prompt', 'a prompt of at least one token', prompt);
  const sampler = new Sampler(o.sampler, model.vocabSize);
  return { chunks: run(model, source, o, sampler, internals) };
}

async function* run(
  model: GenerateModel,
  source: PromptSource,
  o: Resolved,
  sampler: Sampler,
  internals: GenerateInternals,
): AsyncGenerator<GenerateChunk, GenerateReturn> {
  const tokenizer = model.tokenizer;
  const tp = performance.now();
  const { tokens: promptTokens, media } =
    'tokens' in source
      ? source
      : await partsToPrompt(source.parts, tokenizer, model.encodeImage ? (image) => model.encodeImage!(image, { signal: o.signal }) : undefined, o.addBos ?? true);
  if (promptTokens.length === 0) throw invalidArgument('prompt', 'a prompt of at least one token', []);
  const grammar = o.grammar ? new GrammarMatcher(o.grammar.automaton(tokenizer, internals.stopTokens)) : undefined;
  const ownedContext =
    o.sequence === undefined
      ? model.createContext({ contextSize: Math.min(model.contextLength, promptTokens.length + Math.max(o.maxTokens, 1)), threads: o.threads })
      : undefined;
  const ctx = o.sequence ?? ownedContext!.defaultSequence;
  const contextSize = ownedContext?.contextSize ?? o.sequence!.context.contextSize;
  if (ctx.position + promptTokens.length > contextSize) {
    ownedContext?.dispose();
    throw new AglmError('CONTEXT_FULL', `The prompt has ${promptTokens.length} tokens but the context has room for ${contextSize - ctx.position}`);
  }
  const logits = alignedFloat32(model.vocabSize);
  // Generated tokens continue the prompt, so the first piece keeps its leading space.
  const decoder = tokenizer.createStreamDecoder({ atStart: false });
  const stops = new StopMatcher(o.stop);
  const t0 = 'tokens' in source ? performance.now() : tp; // (images encoded count as prompt processing)
  let t1 = t0;
  let generated = 0;
  let stopReason: StopReason = 'maxTokens';
  try {
    await ctx.evaluateInto(promptTokens, 'last', logits, o.signal, 'logits', media);
    t1 = performance.now();
    if (internals.history) sampler.acceptMany(internals.history);
    sampler.acceptMany(promptTokens);
    while (generated < o.maxTokens) {
      const token = sampler.sample(logits, grammar);
      if (tokenizer.isEog(token) || internals.stopTokens?.has(token)) {
        stopReason = 'eos';
        break;
      }
      generated++;
      sampler.accept(token);
      grammar?.accept(token);
      const { text, stopped } = stops.push(decoder.push(token));
      yield { text, token };
      if (stopped) {
        stopReason = 'stop';
        break;
      }
      if (grammar?.finished) {
        stopReason = 'eos'; // the grammar allows nothing but the end: no need to evaluate this token and sample it
        break;
      }
      if (generated >= o.maxTokens) break;
      if (ctx.position >= contextSize) {
        stopReason = 'contextFull';
        break;
      }
      await ctx.evaluateInto([token], 'last', logits, o.signal);
    }
    if (stopReason !== 'stop') {
      const rest = stops.push(decoder.flush());
      const tail = rest.text + (rest.stopped ? '' : stops.flush());
      if (rest.stopped) stopReason = 'stop';
      if (tail) yield { text: tail, token: -1 };
    }
  } finally {
    ownedContext?.dispose();
  }
  const t2 = performance.now();
  const promptMs = t1 - t0;
  const generationMs = t2 - t1;
  return {
    stopReason,
    timings: {
      promptTokens: promptTokens.length,
      promptMs,
      generatedTokens: generated,
      generationMs,
      promptTokensPerSecond: promptMs > 0 ? (promptTokens.length * 1000) / promptMs : 0,
      tokensPerSecond: generationMs > 0 ? (generated * 1000) / generationMs : 0,
    },
  };
}

/** Streams chunks; the generator's return value (after the last chunk) carries the stop reason and timings. */
export function generate(
  model: GenerateModel,
  prompt: Prompt,
  options?: GenerateOptions,
  internals?: GenerateInternals,
): AsyncGenerator<GenerateChunk, GenerateReturn> {
  const { chunks } = start(model, prompt, options, internals);
  return chunks;
}

export async function complete(model: GenerateModel, prompt: Prompt, options?: GenerateOptions): Promise<CompletionResult> {
  const { chunks } = start(model, prompt, options);
  let text = '';
  const tokens: number[] = [];
  for (;;) {
    const r = await chunks.next();
    if (r.done) return { text, tokens, stopReason: r.value.stopReason, timings: r.value.timings };
    text += r.value.text;
    if (r.value.token >= 0) tokens.push(r.value.token);
  }
}
