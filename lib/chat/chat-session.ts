// A chat session: a conversation kept in one context's KV cache. Each turn continues the tokens the previous turn left
// (its prompt, then the reply's tokens as the model generated them) with the tokens of the template text that follows
// them, when the new rendering of the conversation starts with exactly the text those tokens stand for; otherwise it
// tokenizes the whole rendering. Either way it keeps the longest token prefix the context holds and evaluates the rest.
import { AglmError, invalidArgument } from '../errors.js';
import type { Context, ContextOptions } from '../model/context.js';
import { generate, type CompletionTimings, type GenerateModel, type GenerateOptions, type StopReason } from '../model/generate.js';
import type { Sequence } from '../model/sequence.js';
import { TokenType, type Tokenizer } from '../tokenizer/index.js';
import { checkObject, optOneOf } from '../validate.js';
import { checkMessages, imageParts, type ChatMessage, type ChatTemplate } from './chat-template.js';
import type { ImageEmbedding } from '../vision/media.js';
import { checkContentParts, isContentParts, type ContentPart, type ImagePart } from '../vision/prompt.js';
import { checkToolChoice, checkTools, ToolCallFilter, toolCallGrammar, type ChatTool, type ChatToolCall, type ToolChoice } from './tools.js';

export interface ChatSessionOptions extends ContextOptions {
  /**
   * Run the chat on this sequence (of a context with several, for example) instead of a context of its own; the
   * session then takes no context options, and disposing it leaves the sequence to its owner.
   */
  sequence?: Sequence;
  /** The system message that opens the conversation. Default: none. */
  systemPrompt?: string;
  /** A Jinja chat template to use instead of the model's (its tokenizer.chat_template, or a built-in one). */
  template?: string;
  /**
   * When the conversation no longer fits in the context: 'error' (default) rejects the turn with CONTEXT_FULL and
   * leaves the session as it was; 'dropOldest' drops the oldest user/assistant exchanges (never the system prompt or
   * the new message) until the prompt fits with room for a reply of min(maxTokens, contextSize / 4) tokens.
   */
  overflow?: 'error' | 'dropOldest';
  /** Tools the model may call in every turn (a turn's own `tools` replace them). */
  tools?: ChatTool[];
}

export interface ChatPromptOptions extends Omit<GenerateOptions, 'context' | 'sequence' | 'addBos' | 'threads'> {
  /** Most tokens in the reply. Default: as many as the context has room for. */
  maxTokens?: number;
  /**
   * What an aborted reply (the signal fired, or a stream's consumer stopped early) leaves: 'rollback' (default) rejects
   * with ABORTED and leaves the history as it was before the call; 'keep' ends the reply where it stopped, records the
   * partial reply in the history and resolves with it (stopReason 'aborted').
   */
  onAbort?: 'rollback' | 'keep';
  /** Tools the model may call in this turn (default: the session's). */
  tools?: ChatTool[];
  /**
   * 'auto' (default with tools): the model may call one; 'none': the tools are not offered; 'required': the reply is a
   * call (forced by a grammar from the tools' parameter schemas); { type: 'function', function: { name } }: a call
   * to that one. A reply's calls are in lastTurnStats.toolCalls and in the history's assistant message; the text
   * yielded and returned is the reply without them.
   */
  toolChoice?: ToolChoice;
}

export interface ChatTurnStats {
  /** Tokens of the conversation the reply was generated after. */
  promptTokens: number;
  /**
   * Those tokens' ids: the model's view of the conversation. With `continued` 'reply' they are the previous turn's
   * prompt, its reply's tokens as generated, then the tokens of the template text after the reply.
   */
  promptTokenIds: number[];
  /**
   * How the prompt was built: 'reply' continues the previous turn's tokens through its reply as generated; 'prompt'
   * continues the previous turn's prompt tokens, the reply taken from its text (the template writes the reply
   * otherwise than the model did, e.g. trimmed, or the reply ended in text it did not keep); 'none' tokenizes the
   * whole conversation (the first turn, after reset(), dropped exchanges, a template that rewrites earlier turns).
   */
  continued: 'reply' | 'prompt' | 'none';
  /** Of those, how many the context already held from earlier turns (not evaluated again). */
  reusedTokens: number;
  /** Prompt tokens evaluated by this turn (promptTokens - reusedTokens). */
  evaluatedTokens: number;
  /** Tokens of the reply (the end-of-turn token not counted). */
  generatedTokens: number;
  /** The reply's token ids. */
  tokens: number[];
  stopReason: StopReason | 'aborted';
  timings: CompletionTimings | undefined;
  /** The tool calls the reply made (empty when none). */
  toolCalls: ChatToolCall[];
}

/** @internal what a session needs from its model (Model.createChatSession passes it). */
export interface ChatSessionInit {
  model: GenerateModel;
  sequence: Sequence;
  /** The context the session made for itself (disposed with it), if it was not given a sequence. */
  ownContext?: Context;
  template: ChatTemplate;
  tokenizer: Tokenizer;
}

/** Strips the start of a stream while it matches `prefix` (the template's reply lead, e.g. '\n'). */
export class LeadStripper {
  #left: string;
  /** What was stripped: the start of `prefix` that the stream began with. */
  stripped = '';
  constructor(prefix: string) {
    this.#left = prefix;
  }
  push(text: string): string {
    let i = 0;
    while (this.#left.length > 0 && i < text.length && text[i] === this.#left[0]) {
      i++;
      this.#left = this.#left.slice(1);
    }
    if (i < text.length) this.#left = '';
    this.stripped += text.slice(0, i);
    return text.slice(i);
  }
}

/** A turn's prompt: the rendered conversation, its tokens, and how they were built (ChatTurnStats.continued). */
interface Prompt {
  text: string;
  tokens: Uint32Array;
  continued: ChatTurnStats['continued'];
}

/**
 * Tokens that stand for a text: the conversation as the last turn left it, i.e. its prompt (text and tokens), then
 * the template's reply lead and the reply, for as many of the reply's tokens as generated as spell out its text.
 * `cuts`, longest first, are where a prefix of the tokens stands exactly for a prefix of the text: the end of those
 * reply tokens ('reply') and the end of the prompt ('prompt'). The next turn continues from the longest cut whose
 * text its rendering starts with.
 */
interface Transcript {
  text: string;
  tokens: Uint32Array;
  cuts: { chars: number; tokens: number; kind: 'reply' | 'prompt' }[];
}

export class ChatSession {
  readonly #model: GenerateModel;
  readonly #sequence: Sequence;
  readonly #ownContext: Context | undefined;
  readonly #template: ChatTemplate;
  readonly #tokenizer: Tokenizer;
  readonly #overflow: 'error' | 'dropOldest';
  readonly #tools: ChatTool[];
  #history: ChatMessage[];
  /** The tokens the context holds, in order (its length is the context's position). */
  #cached: number[] = [];
  /** The token sequence that stands for the conversation in #history (undefined: tokenize it from its text). */
  #transcript: Transcript | undefined;
  #busy = false;
  #disposed = false;
  #lastTurn: ChatTurnStats | undefined;
  /** The rows of the images in the history's messages (by part), so that later turns do not decode them again. */
  readonly #imageRows = new WeakMap<object, ImageEmbedding>();

  /** @internal use model.createChatSession() */
  constructor(init: ChatSessionInit, options: ChatSessionOptions) {
    this.#model = init.model;
    this.#sequence = init.sequence;
    this.#ownContext = init.ownContext;
    this.#template = init.template;
    this.#tokenizer = init.tokenizer;
    this.#overflow = optOneOf('overflow', options.overflow, ['error', 'dropOldest'] as const, 'error');
    this.#history = initialHistory(options.systemPrompt);
    this.#tools = options.tools === undefined ? [] : checkTools(options.tools);
  }

  /** The conversation so far (a copy): the system message if any, then user and assistant messages in turn. */
  get history(): ChatMessage[] {
    return this.#history.map((m) => ({ ...m, ...(m.toolCalls ? { toolCalls: m.toolCalls.map((c) => ({ ...c, function: { ...c.function } })) } : {}) }));
  }

  /** The template the session renders with: its name ('file', 'custom' or a built-in) and source. */
  get template(): { name: string; source: string } {
    return { name: this.#template.name, source: this.#template.source };
  }

  /** How many tokens the session's context holds, and how many it can. */
  get contextTokens(): number {
    return this.#cached.length;
  }
  get contextSize(): number {
    return this.#sequence.context.contextSize;
  }

  /** The sequence the conversation lives in. */
  get sequence(): Sequence {
    return this.#sequence;
  }

  /** What the last completed (or kept) turn evaluated and generated; undefined before the first. */
  get lastTurnStats(): ChatTurnStats | undefined {
    const t = this.#lastTurn;
    return t && { ...t, promptTokenIds: [...t.promptTokenIds], tokens: [...t.tokens], toolCalls: t.toolCalls.map((c) => ({ ...c, function: { ...c.function } })) };
  }

  /** The ids that end a reply: the vocabulary's end-of-generation tokens and the template's end of turn. */
  get endOfTurnTokens(): number[] {
    this.#checkUsable();
    const ids = this.#template.endOfTurnTokens([...this.#history, { role: 'user', content: '?' }]);
    return [...new Set([...this.#tokenizer.vocab.eog, ...ids])].sort((a, b) => a - b);
  }

  get disposed(): boolean {
    return this.#disposed || this.#sequence.disposed;
  }

  /**
   * Sends a user message (text, or content parts with images: [{ type: 'image', image }, { type: 'text', text }]), or
   * messages (a tool's result: { role: 'tool', toolCallId, content }); resolves with the whole reply (without tool
   * calls: see lastTurnStats.toolCalls).
   */
  async prompt(input: string | ContentPart[] | ChatMessage | ChatMessage[], options?: ChatPromptOptions): Promise<string> {
    let reply = '';
    for await (const chunk of this.stream(input, options)) reply += chunk;
    return reply;
  }

  /** Sends a user message (or messages, as prompt()); yields the reply as it is generated, in chunks of whole characters. */
  stream(input: string | ContentPart[] | ChatMessage | ChatMessage[], options?: ChatPromptOptions): AsyncIterable<string> {
    this.#checkUsable();
    let added: ChatMessage[];
    if (typeof input === 'string') added = [{ role: 'user', content: input }];
    else if (isContentParts(input)) {
      checkContentParts(input, 'content');
      added = [{ role: 'user', content: [...input] }];
    }
    else {
      added = Array.isArray(input) ? input : [input];
      if (added.length === 0) throw invalidArgument('messages', 'at least one message', input);
      checkMessages(added);
      added = added.map((m) => ({ ...m }));
    }
    const o = checkObject<ChatPromptOptions>('chat prompt options', options);
    const { onAbort, tools: turnTools, toolChoice, ...generateOptions } = o;
    const policy = optOneOf('onAbort', onAbort, ['rollback', 'keep'] as const, 'rollback');
    const tools = turnTools === undefined ? this.#tools : checkTools(turnTools);
    const choice = checkToolChoice(toolChoice, tools);
    const offered = choice === 'none' ? [] : tools;
    if (choice !== 'auto' && choice !== 'none') {
      if (generateOptions.grammar !== undefined || generateOptions.jsonSchema !== undefined) {
        throw invalidArgument('toolChoice', 'no required tool call together with grammar or jsonSchema', toolChoice);
      }
      generateOptions.grammar = toolCallGrammar(this.#template.toolStyle, tools, typeof choice === 'object' ? choice.function.name : undefined);
    }
    return this.#turn(added, generateOptions, policy, offered);
  }

  /** Forgets the conversation (optionally with a new system prompt). The cache is reused where the prefix matches. */
  reset(options?: { systemPrompt?: string }): void {
    this.#checkUsable();
    const o = checkObject<{ systemPrompt?: string }>('reset options', options);
    this.#history = initialHistory(o.systemPrompt);
    this.#transcript = undefined;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#ownContext?.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  async *#turn(added: ChatMessage[], options: Omit<ChatPromptOptions, 'onAbort' | 'tools' | 'toolChoice'>, policy: 'rollback' | 'keep', tools: ChatTool[]): AsyncGenerator<string> {
    this.#checkUsable();
    this.#busy = true;
    let committed = false;
    let failed = false;
    let generation: ReturnType<typeof generate> | undefined;
    let fitted: Prompt | undefined;
    let prompt: Uint32Array | undefined;
    let frame = { lead: '', end: '' };
    let lead = new LeadStripper('');
    // The reply as the model wrote it (calls included), for the transcript, behind its own lead stripper.
    let rawLead = new LeadStripper('');
    let raw = '';
    const filter = tools.length > 0 ? new ToolCallFilter(this.#template.toolStyle, tools) : undefined;
    let calls: ChatToolCall[] = [];
    const generated: number[] = [];
    let reply = '';
    let messages: ChatMessage[] = [];
    let stats: Omit<ChatTurnStats, 'tokens' | 'generatedTokens' | 'stopReason' | 'timings' | 'toolCalls'> | undefined;
    const commit = (stopReason: ChatTurnStats['stopReason'], timings: CompletionTimings | undefined) => {
      const content = calls.length > 0 ? reply.trimEnd() : reply;
      this.#history = [...messages, { role: 'assistant', content, ...(calls.length > 0 ? { toolCalls: calls } : {}) }];
      this.#transcript = transcriptOf(this.#tokenizer, fitted!, frame.lead, rawLead.stripped, raw, generated);
      this.#lastTurn = { ...stats!, generatedTokens: generated.length, tokens: [...generated], stopReason, timings, toolCalls: calls };
      committed = true;
    };
    try {
      messages = [...this.#history, ...added];
      const images = await this.#images(messages, options.signal);
      fitted = this.#fit(messages, options.maxTokens, tools, images);
      prompt = fitted.tokens;
      // Keep the longest prefix the context holds; at least one token is evaluated to get the next token's logits.
      let keep = commonPrefix(this.#cached, prompt);
      if (keep === prompt.length) keep--;
      this.#sequence.truncate(keep);
      this.#cached.length = keep;
      stats = {
        promptTokens: prompt.length,
        promptTokenIds: Array.from(prompt),
        continued: fitted.continued,
        reusedTokens: keep,
        evaluatedTokens: prompt.length - keep,
      };
      frame = this.#template.replyFrame(messages, tools);
      lead = new LeadStripper(frame.lead);
      rawLead = new LeadStripper(frame.lead);
      generation = generate(
        this.#model,
        prompt.subarray(keep),
        // No maxTokens: the reply may fill the context (it then stops with 'contextFull').
        { ...options, maxTokens: options.maxTokens ?? 1 << 24, sequence: this.#sequence },
        { history: prompt.subarray(0, keep), stopTokens: new Set(this.#template.endOfTurnTokens(messages, tools)), media: images },
      );
      for (;;) {
        let r;
        try {
          r = await generation.next();
        } catch (e) {
          if (policy === 'keep' && e instanceof AglmError && e.code === 'ABORTED') {
            commit('aborted', undefined);
            return;
          }
          throw e;
        }
        if (r.done) {
          if (filter) {
            const parsed = filter.finish();
            calls = parsed.calls;
            const rest = lead.push(parsed.rest);
            if (rest.length > 0) {
              reply += rest;
              yield rest;
            }
          }
          commit(r.value.stopReason, r.value.timings);
          return;
        }
        if (r.value.token >= 0) generated.push(r.value.token);
        raw += rawLead.push(r.value.text);
        const chunk = lead.push(filter ? filter.push(r.value.text) : r.value.text);
        if (chunk.length === 0) continue;
        reply += chunk;
        yield chunk;
      }
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // The consumer may stop early (return() at a yield): the generation is closed, and 'keep' keeps the reply.
      if (generation && !committed) await generation.return(undefined as never).catch(() => {});
      if (!committed && !failed && policy === 'keep' && stats !== undefined && !this.#sequence.disposed) commit('aborted', undefined);
      // What the sequence holds now: the prompt, then each generated token it evaluated (all but the last sampled).
      if (prompt && !this.#sequence.disposed) this.#cached = [...prompt, ...generated].slice(0, this.#sequence.position);
      this.#busy = false;
    }
  }

  /** The rows of the messages' images, in order (encoded, or as earlier turns had them). */
  async #images(messages: readonly ChatMessage[], signal: AbortSignal | undefined): Promise<ImageEmbedding[]> {
    const parts = imageParts(messages) as ImagePart[];
    if (parts.length === 0) return [];
    const encode = this.#model.encodeImage;
    if (!encode) throw new AglmError('NO_PROJECTOR', 'This model was loaded without a vision projector: loadModel(path, { projector: mmprojPath }) reads images');
    const out: ImageEmbedding[] = [];
    for (const part of parts) {
      let rows = this.#imageRows.get(part);
      if (!rows) {
        rows = await encode.call(this.#model, part.image, { signal });
        this.#imageRows.set(part, rows);
      }
      out.push(rows);
    }
    return out;
  }

  /** The conversation's prompt; drops old exchanges or throws CONTEXT_FULL when it does not fit. */
  #fit(messages: ChatMessage[], maxTokens: number | undefined, tools: ChatTool[], images: ImageEmbedding[]): Prompt {
    const size = this.#sequence.context.contextSize;
    const reserve = this.#overflow === 'dropOldest' ? Math.max(1, Math.min(maxTokens ?? size, Math.floor(size / 4))) : 1;
    for (;;) {
      const prompt = this.#prompt(messages, tools, images.slice(images.length - imageParts(messages).length));
      const tokens = prompt.tokens;
      if (tokens.length === 0) throw new AglmError('CHAT_TEMPLATE_ERROR', `The chat template (${this.#template.name}) rendered no tokens`);
      if (tokens.length + reserve <= size) return prompt;
      const first = messages[0]?.role === 'system' ? 1 : 0;
      if (this.#overflow === 'dropOldest' && messages.length - first > 1) {
        // One exchange: the oldest message and the replies up to the next user message (never the new one).
        let end = first + 1;
        while (end < messages.length - 1 && messages[end].role !== 'user') end++;
        messages.splice(first, end - first);
        continue;
      }
      throw new AglmError(
        'CONTEXT_FULL',
        `The conversation is ${tokens.length} tokens and the session's context holds ${size}, with ${reserve} kept for the reply` +
          (this.#overflow === 'error' ? " (overflow: 'dropOldest' drops old exchanges instead)" : ''),
      );
    }
  }

  /**
   * The conversation's tokens: the transcript's tokens up to its longest cut whose text the rendering starts with (and
   * ends on a token boundary of the rendering's tokenization), then the tokens of the text after it; else the whole
   * rendering tokenized.
   */
  #prompt(messages: readonly ChatMessage[], tools: ChatTool[], images: readonly ImageEmbedding[]): Prompt {
    const t = this.#transcript;
    const c = this.#template.continuation(messages, t ? t.cuts.map((cut) => t.text.slice(0, cut.chars)) : [], tools, images);
    if (t === undefined || c.prefix < 0) return { text: c.text, tokens: c.tokens, continued: 'none' };
    const cut = t.cuts[c.prefix];
    const tokens = new Uint32Array(cut.tokens + c.tokens.length - c.start);
    tokens.set(t.tokens.subarray(0, cut.tokens));
    tokens.set(c.tokens.subarray(c.start), cut.tokens);
    return { text: c.text, tokens, continued: cut.kind };
  }

  #checkUsable(): void {
    if (this.disposed) throw new AglmError('DISPOSED', 'The chat session was disposed (or its model was)');
    if (this.#busy) throw new AglmError('BUSY', 'The chat session is already replying; finish or abort that reply first');
  }
}

function initialHistory(systemPrompt: unknown): ChatMessage[] {
  if (systemPrompt === undefined) return [];
  if (typeof systemPrompt !== 'string') throw invalidArgument('systemPrompt', 'a string', systemPrompt);
  return [{ role: 'system', content: systemPrompt }];
}

/**
 * The transcript a committed turn leaves: its prompt, then the reply's tokens as generated for as far as they spell
 * out, byte for byte, the reply as recorded (what the lead stripper took, then the reply's text), ending on a whole
 * character. They stop earlier where the recorded reply is shorter (a stop string, text held back at an abort, an
 * incomplete character at the end) or where the model wrote a control token. Those tokens stand for the template's
 * lead and that much of the reply: a model that left out the lead (Llama 2's space after [/INST]) keeps its own
 * tokens, as node-llama-cpp does.
 */
function transcriptOf(tokenizer: Tokenizer, prompt: Prompt, lead: string, stripped: string, reply: string, generated: readonly number[]): Transcript {
  const cuts: Transcript['cuts'] = [{ chars: prompt.text.length, tokens: prompt.tokens.length, kind: 'prompt' }];
  const written = new TextEncoder().encode(stripped + reply);
  let bytes = 0;
  let kept = 0;
  let keptBytes = 0;
  for (let j = 0; j < generated.length; j++) {
    const id = generated[j];
    const type = tokenizer.vocab.type(id);
    if (type === TokenType.control || type === TokenType.unknown || type === TokenType.unused) break;
    const b = tokenizer.tokenBytes(id);
    if (bytes + b.length > written.length || b.some((x, k) => written[bytes + k] !== x)) break;
    bytes += b.length;
    // A whole character ends here: the next byte is not a UTF-8 continuation byte.
    if (bytes === written.length || (written[bytes] & 0xc0) !== 0x80) {
      kept = j + 1;
      keptBytes = bytes;
    }
  }
  const chars = new TextDecoder().decode(written.subarray(0, keptBytes)).length - stripped.length;
  if (kept === 0 || chars < 0) return { text: prompt.text, tokens: prompt.tokens, cuts };
  const tokens = new Uint32Array(prompt.tokens.length + kept);
  tokens.set(prompt.tokens);
  tokens.set(generated.slice(0, kept), prompt.tokens.length);
  const text = prompt.text + lead + reply.slice(0, chars);
  return { text, tokens, cuts: [{ chars: text.length, tokens: tokens.length, kind: 'reply' }, ...cuts] };
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
