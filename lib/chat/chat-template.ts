// A chat template: a Jinja source rendered with @huggingface/jinja the way Hugging Face's apply_chat_template does
// (messages, add_generation_prompt, bos_token/eos_token/unk_token/pad_token), and turned into tokens so that the
// text of the messages can never become special tokens.
import { randomBytes } from 'node:crypto';
import { Template } from '@huggingface/jinja';
import { AglmError, invalidArgument } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ImageEmbedding } from '../vision/media.js';
import { checkContentParts, imageFrame, imageTokens, MEDIA_MARKER, type ContentPart } from '../vision/prompt.js';
import { checkTools, type ChatTool, type ChatToolCall, type ToolCallStyle } from './tools.js';

export interface ChatMessage {
  /** 'system', 'user', 'assistant', 'tool' (a call's result), or any role the template knows ('observation', ...). */
  role: string;
  /**
   * The text, or content parts: { type: 'text', text } and { type: 'image', image } (a model loaded with a projector
   * reads images; each takes the place the template gives the message's text, in order).
   */
  content: string | ContentPart[];
  /** An assistant message's tool calls. */
  toolCalls?: ChatToolCall[];
  /** A tool message: the id of the call it answers. */
  toolCallId?: string;
  /** A tool message: the function's name. */
  name?: string;
}

export interface ApplyChatTemplateOptions {
  /** End with the header of an assistant reply, ready for the model to write it. Default true. */
  addGenerationPrompt?: boolean;
  /** Tools the model may call, written where the template puts them (its system prompt, mostly). */
  tools?: ChatTool[];
}

/** @internal tokenize() with images: their rows, in the order the messages hold them. */
export interface TokenizeWithImages extends ApplyChatTemplateOptions {
  images?: readonly ImageEmbedding[];
}

/** The messages' image parts, in order. */
export function imageParts(messages: readonly ChatMessage[]): ContentPart[] {
  const out: ContentPart[] = [];
  for (const m of messages) if (typeof m.content !== 'string') for (const p of m.content) if (p.type === 'image') out.push(p);
  return out;
}

type FlatMessage = Omit<ChatMessage, 'content'> & { content: string };

/** How a template takes tools: its own `tools` variable, GLM-4's tools on a message, or none (then Hermes text). */
type ToolSupport = 'native' | 'message' | 'generic';

const HERMES_TOOLS = (tools: readonly ChatTool[]) =>
  '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures ' +
  'within <tools></tools> XML tags:\n<tools>' + tools.map((t) => '\n' + JSON.stringify(t)).join('') +
  '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> ' +
  'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';

/** Private-use characters mark where each message's content lands in a rendering (see #contentRanges). */
const MARK_OPEN = '\uE000';
const MARK_CLOSE = '\uE001';
/** Stands for an assistant reply when finding what a template writes around one. */
const REPLY_MARK = '\uE002';

type Piece = string | { message: number };

export class ChatTemplate {
  /** 'file' (the model's tokenizer.chat_template), 'custom', or the name of a built-in template. */
  readonly name: string;
  readonly source: string;
  /** Why this template: the file has one, the caller gave it, or which built-in fits the model and why. */
  readonly reason: string;
  readonly #template: Template;
  readonly #tokenizer: Tokenizer;
  readonly #specialTokens: Record<string, string>;
  /** End-of-turn ids per reply `end` text (see endOfTurnTokens). */
  readonly #endIds = new Map<string, readonly number[]>();
  /** How this template writes tool calls (what a reply's calls are parsed as). */
  readonly toolStyle: ToolCallStyle;
  readonly #toolSupport: ToolSupport;
  /** Stands for an image in renderings: private-use characters around a random nonce no text can guess. */
  readonly #mediaMark = `\uE003${randomBytes(8).toString('hex')}\uE004`;

  constructor(source: string, name: string, tokenizer: Tokenizer, reason = name) {
    if (typeof source !== 'string' || source.length === 0) throw invalidArgument('template', 'a non-empty Jinja template string', source);
    this.name = name;
    this.reason = reason;
    this.source = source;
    this.#tokenizer = tokenizer;
    try {
      this.#template = new Template(source);
    } catch (e) {
      throw new AglmError('CHAT_TEMPLATE_ERROR', `The chat template (${name}) does not parse: ${(e as Error).message}`, { cause: e });
    }
    const usesTools = /\btools\b/.test(source);
    this.#toolSupport = !usesTools ? 'generic' : /(item|message|m)\s*(\[\s*['"]tools['"]\s*\]|\.tools\b)/.test(source) ? 'message' : 'native';
    this.toolStyle =
      name === 'glm4' || (usesTools && (source.includes('<|observation|>') || source.includes('[gMASK]'))) ? 'glm4'
      : name === 'llama3' || (usesTools && source.includes('<|start_header_id|>') && !source.includes('<tool_call>')) ? 'llama3'
      : 'hermes';
    const vocab = tokenizer.vocab;
    const text = (id: number | undefined) => (id === undefined ? '' : vocab.piece(id));
    this.#specialTokens = {
      bos_token: text(vocab.bos),
      eos_token: text(vocab.eos),
      unk_token: text(vocab.unk),
      pad_token: text(vocab.pad),
    };
  }

  /** The conversation as text, as Hugging Face's apply_chat_template(messages, tokenize=False) gives it. */
  render(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): string {
    checkMessages(messages);
    const addGenerationPrompt = options?.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') throw invalidArgument('addGenerationPrompt', 'a boolean', addGenerationPrompt);
    const tools = options?.tools === undefined ? undefined : checkTools(options.tools);
    return this.#render(messages, addGenerationPrompt, tools).replaceAll(this.#mediaMark, MEDIA_MARKER);
  }

  /** A message's content as the template reads it: text parts joined, each image as the media mark. */
  #flatten(messages: readonly ChatMessage[]): FlatMessage[] {
    return messages.map((m) =>
      typeof m.content === 'string' ? (m as FlatMessage) : { ...m, content: m.content.map((p) => (p.type === 'text' ? p.text : this.#mediaMark)).join('') },
    );
  }

  /**
   * The conversation as tokens: the template's own text may hold special tokens (<|user|>, <s>, ...), the messages'
   * text never does (it is tokenized as plain text). BOS is prepended when the vocabulary asks for one and the
   * template did not write it, so there is exactly one either way.
   */
  tokenize(messages: readonly ChatMessage[], options?: TokenizeWithImages): Uint32Array {
    checkMessages(messages);
    const addGenerationPrompt = options?.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') throw invalidArgument('addGenerationPrompt', 'a boolean', addGenerationPrompt);
    const tools = options?.tools === undefined ? undefined : checkTools(options.tools);
    const text = this.#render(messages, addGenerationPrompt, tools);
    return this.#encode(text, this.#contentRanges(messages, addGenerationPrompt, text, tools), options?.images);
  }

  /**
   * @internal What a chat session needs to continue tokens it already holds. Renders `messages` with the generation
   * prompt and tokenizes the text as tokenize() does (`text`, `tokens`); then finds the first of `prefixes` (texts the
   * session holds tokens for) that the rendering starts with and that ends on a boundary of `tokens`: the prefix
   * tokenized alone (its message contents plain, as in the whole) gives exactly `tokens[0, start)`, so `tokens[start..]`
   * are the tokens of the text after the prefix, as the whole rendering's tokenization has them. `prefix` is that
   * prefix's index, or -1 (start 0) when none qualifies: a template that rewrote or trimmed what the prefix holds, or a
   * tokenizer that merges the prefix's last characters with the text after it.
   */
  continuation(
    messages: readonly ChatMessage[],
    prefixes: readonly string[],
    tools?: ChatTool[],
    images?: readonly ImageEmbedding[],
  ): { text: string; tokens: Uint32Array; prefix: number; start: number } {
    checkMessages(messages);
    const text = this.#render(messages, true, tools === undefined ? undefined : checkTools(tools));
    const ranges = this.#contentRanges(messages, true, text, tools);
    const tokens = this.#encode(text, ranges, images);
    for (let i = 0; i < prefixes.length; i++) {
      const p = prefixes[i];
      if (p.length === 0 || p.length > text.length || !text.startsWith(p)) continue;
      const clipped = ranges?.filter(([s]) => s < p.length).map(([s, e]): [number, number] => [s, Math.min(e, p.length)]);
      const head = this.#encode(p, clipped, images);
      if (head.length <= tokens.length && head.every((id, k) => tokens[k] === id)) return { text, tokens, prefix: i, start: head.length };
    }
    return { text, tokens, prefix: -1, start: 0 };
  }

  /**
   * Tokenizes rendered text: special tokens parsed outside `plainRanges`; each media mark as the next image's tokens
   * (the text between tokenized apart, as llama.cpp's mtmd does); BOS first when the vocabulary wants it.
   */
  #encode(text: string, plainRanges: [number, number][] | undefined, images?: readonly ImageEmbedding[]): Uint32Array {
    const mark = this.#mediaMark;
    let tokens: Uint32Array;
    if (!text.includes(mark)) tokens = this.#tokenizer.encode(text, { special: true, addBos: false, addEos: false, addSep: false, plainRanges });
    else {
      const segments = text.split(mark);
      const n = segments.length - 1;
      if (!images || images.length < n) {
        throw new AglmError('NO_PROJECTOR', `The messages hold ${n} image(s): a model loaded with a projector reads them (loadModel(path, { projector }))`);
      }
      const frame = imageFrame(this.#tokenizer);
      const pieces: Uint32Array[] = [];
      let at = 0;
      segments.forEach((seg, k) => {
        const end = at + seg.length;
        const ranges = plainRanges?.filter(([s, e]) => e > at && s < end).map(([s, e]): [number, number] => [Math.max(s, at) - at, Math.min(e, end) - at]);
        if (seg.length > 0) pieces.push(this.#tokenizer.encode(seg, { special: true, addBos: false, addEos: false, addSep: false, plainRanges: ranges }));
        if (k < n) pieces.push(imageTokens(frame, images[k]));
        at = end + mark.length;
      });
      tokens = new Uint32Array(pieces.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of pieces) {
        tokens.set(p, o);
        o += p.length;
      }
    }
    const bos = this.#tokenizer.bos;
    if (this.#tokenizer.addBos && bos !== undefined && tokens[0] !== bos) {
      const out = new Uint32Array(tokens.length + 1);
      out[0] = bos;
      out.set(tokens, 1);
      return out;
    }
    return tokens;
  }

  /**
   * What the template writes around an assistant reply after `messages`: `lead`, the text between the generation
   * prompt and the reply's content (GLM-4: '\n', Llama 2: ' '), which the model writes itself and which is not part
   * of the reply; and `end`, the text that closes the reply ('<|im_end|>\n', '<|eot_id|>', ' </s>', ...).
   */
  replyFrame(messages: readonly ChatMessage[], tools?: ChatTool[]): { lead: string; end: string } {
    const prompt = this.render(messages, { addGenerationPrompt: true, tools });
    const withReply = this.#render([...messages, { role: 'assistant', content: REPLY_MARK }, { role: 'user', content: REPLY_MARK }], false, tools);
    const at = withReply.indexOf(REPLY_MARK);
    const next = withReply.indexOf(REPLY_MARK, at + 1);
    const lead = at >= prompt.length && withReply.startsWith(prompt) ? withReply.slice(prompt.length, at) : '';
    const end = at >= 0 && next > at ? withReply.slice(at + REPLY_MARK.length, next) : '';
    return { lead, end };
  }

  /**
   * The ids that end the template's assistant turn after `messages`: the first control token the template writes after
   * a reply (<|im_end|>, <|eot_id|>, </s>, GLM's <|user|>), and for GLM also <|observation|> (a turn that calls a
   * tool ends with it).
   */
  endOfTurnTokens(messages: readonly ChatMessage[], tools?: ChatTool[]): readonly number[] {
    const { end } = this.replyFrame(messages, tools);
    let ids = this.#endIds.get(end);
    if (ids) return ids;
    const tk = this.#tokenizer;
    const first = Array.from(tk.encode(end, { special: true, addBos: false, addEos: false, addSep: false })).find((id) => tk.isControl(id));
    const observation = tk.vocab.idOf('<|observation|>');
    const glm = first !== undefined && tk.vocab.piece(first) === '<|user|>' && observation !== undefined;
    ids = first === undefined ? [] : glm ? [first, observation] : [first];
    this.#endIds.set(end, ids);
    return ids;
  }

  #render(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tools?: readonly ChatTool[]): string {
    try {
      const prepared = this.#prepare(this.#flatten(messages), tools);
      return this.#template.render({ ...prepared, add_generation_prompt: addGenerationPrompt, ...this.#specialTokens });
    } catch (e) {
      throw new AglmError('CHAT_TEMPLATE_ERROR', `The chat template (${this.name}) failed on these messages: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * The messages (and tools) as the template reads them: Hugging Face's names (tool_calls with each call's arguments
   * as an object, tool_call_id), the tools as a `tools` variable (native), on the first message (GLM-4's own
   * template), or, for a template without tools, as Hermes text: the functions in the system message, calls as
   * <tool_call> blocks in the assistant's text, results as <tool_response> blocks in a user message.
   */
  #prepare(messages: readonly FlatMessage[], tools: readonly ChatTool[] | undefined): { messages: object[]; tools?: object[] } {
    const hasTools = tools !== undefined && tools.length > 0;
    const args = (c: ChatToolCall): unknown => {
      try {
        return JSON.parse(c.function.arguments);
      } catch {
        return c.function.arguments;
      }
    };
    if (this.#toolSupport === 'generic') {
      const out: { role: string; content: string }[] = [];
      for (const m of messages) {
        if (m.role === 'tool') {
          const block = `<tool_response>\n${m.content}\n</tool_response>`;
          const last = out[out.length - 1];
          if (last && last.role === 'user' && last.content.endsWith('</tool_response>')) last.content += '\n' + block;
          else out.push({ role: 'user', content: block });
        } else if (m.role === 'assistant' && m.toolCalls?.length) {
          const calls = m.toolCalls.map((c) => `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: args(c) })}\n</tool_call>`);
          out.push({ role: 'assistant', content: [m.content, ...calls].filter((x) => x).join('\n') });
        } else out.push({ role: m.role, content: m.content });
      }
      if (hasTools) {
        if (out[0]?.role === 'system') out[0] = { role: 'system', content: `${out[0].content}\n\n${HERMES_TOOLS(tools)}` };
        else out.unshift({ role: 'system', content: HERMES_TOOLS(tools) });
      }
      return { messages: out };
    }
    const hf: Record<string, unknown>[] = [];
    for (const m of messages) {
      if (this.#toolSupport === 'message' && m.role === 'assistant' && m.toolCalls?.length) {
        // GLM-4's own template: one assistant turn per call, the name as metadata, the arguments as content.
        if (m.content) hf.push({ role: 'assistant', content: m.content });
        for (const c of m.toolCalls) hf.push({ role: 'assistant', metadata: c.function.name, content: JSON.stringify(args(c)) });
        continue;
      }
      if (this.#toolSupport === 'message' && m.role === 'tool') {
        hf.push({ role: 'observation', content: m.content });
        continue;
      }
      const o: Record<string, unknown> = { role: m.role, content: m.content };
      if (m.toolCalls?.length) o.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: args(c) } }));
      if (m.toolCallId !== undefined) o.tool_call_id = m.toolCallId;
      if (m.name !== undefined) o.name = m.name;
      hf.push(o);
    }
    if (!hasTools) return { messages: hf };
    if (this.#toolSupport === 'message') {
      if (hf[0]?.role === 'system') hf[0] = { ...hf[0], tools };
      else hf.unshift({ role: 'system', content: '', tools });
      return { messages: hf };
    }
    return { messages: hf, tools: tools as object[] };
  }

  /**
   * Where each message's content lies in `text` (the rendering of `messages`): render again with a marker in place of
   * each content, then match the marked rendering against `text`, letting each marker stand for the content as is or
   * trimmed (templates that trim or strip). Returns undefined when the two cannot be matched (a template that
   * transforms contents in other ways); the whole text is then parsed for special tokens, as Hugging Face does.
   */
  #contentRanges(original: readonly ChatMessage[], addGenerationPrompt: boolean, text: string, tools?: readonly ChatTool[]): [number, number][] | undefined {
    const messages = this.#flatten(original);
    if (messages.some((m) => m.content.includes(MARK_OPEN) || m.content.includes(MARK_CLOSE))) return undefined;
    // Empty contents stay empty: templates skip them ('if m.content'), and they hold nothing to protect.
    const marked = this.#render(
      messages.map((m, i) => (m.content === '' ? m : { ...m, content: `${MARK_OPEN}${i}${MARK_CLOSE}` })),
      addGenerationPrompt,
      tools,
    );
    const pieces: Piece[] = [];
    const re = new RegExp(`${MARK_OPEN}(\\d+)${MARK_CLOSE}`, 'g');
    let last = 0;
    for (let m = re.exec(marked); m !== null; m = re.exec(marked)) {
      if (m.index > last) pieces.push(marked.slice(last, m.index));
      pieces.push({ message: Number(m[1]) });
      last = m.index + m[0].length;
    }
    if (last < marked.length) pieces.push(marked.slice(last));
    const ranges: [number, number][] = [];
    const match = (i: number, pos: number): boolean => {
      if (i === pieces.length) return pos === text.length;
      const p = pieces[i];
      if (typeof p === 'string') return text.startsWith(p, pos) && match(i + 1, pos + p.length);
      const content = messages[p.message]?.content ?? '';
      for (const c of new Set([content, content.trim(), content.trimStart(), content.trimEnd()])) {
        if (!text.startsWith(c, pos)) continue;
        ranges.push([pos, pos + c.length]);
        if (match(i + 1, pos + c.length)) return true;
        ranges.pop();
      }
      return false;
    };
    return match(0, 0) ? ranges.filter(([s, e]) => e > s) : undefined;
  }
}

/** Checks a messages array: objects with string role and content (and, where given, tool calls or a call id). */
export function checkMessages(messages: unknown): asserts messages is readonly ChatMessage[] {
  if (!Array.isArray(messages)) throw invalidArgument('messages', 'an array of { role, content } objects', messages);
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw invalidArgument(`messages[${i}]`, 'a { role, content } object', m);
    const { role, content, toolCalls, toolCallId, name } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.length === 0) throw invalidArgument(`messages[${i}].role`, 'a non-empty string', role);
    if (typeof content !== 'string') {
      if (!Array.isArray(content)) throw invalidArgument(`messages[${i}].content`, 'a string or an array of content parts', content);
      checkContentParts(content, `messages[${i}].content`);
    }
    if (toolCalls !== undefined) {
      if (!Array.isArray(toolCalls)) throw invalidArgument(`messages[${i}].toolCalls`, 'an array of tool calls', toolCalls);
      toolCalls.forEach((c, k) => {
        const f = (c as ChatToolCall | null)?.function;
        if (!f || typeof f.name !== 'string' || typeof f.arguments !== 'string') {
          throw invalidArgument(`messages[${i}].toolCalls[${k}]`, "{ id, type: 'function', function: { name, arguments (JSON text) } }", c);
        }
      });
    }
    if (toolCallId !== undefined && typeof toolCallId !== 'string') throw invalidArgument(`messages[${i}].toolCallId`, 'a string', toolCallId);
    if (name !== undefined && typeof name !== 'string') throw invalidArgument(`messages[${i}].name`, 'a string', name);
  });
}
