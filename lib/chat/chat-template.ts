// A chat template: a Jinja source rendered with @huggingface/jinja the way Hugging Face's apply_chat_template does
// (messages, add_generation_prompt, bos_token/eos_token/unk_token/pad_token), and turned into tokens so that the
// text of the messages can never become special tokens.
import { Template } from '@huggingface/jinja';
import { AglmError, invalidArgument } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';

export interface ChatMessage {
  /** 'system', 'user', 'assistant', or any role the template knows ('observation', 'tool', ...). */
  role: string;
  content: string;
}

export interface ApplyChatTemplateOptions {
  /** End with the header of an assistant reply, ready for the model to write it. Default true. */
  addGenerationPrompt?: boolean;
}

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
    return this.#render(messages, addGenerationPrompt);
  }

  /**
   * The conversation as tokens: the template's own text may hold special tokens (<|user|>, <s>, ...), the messages'
   * text never does (it is tokenized as plain text). BOS is prepended when the vocabulary asks for one and the
   * template did not write it, so there is exactly one either way.
   */
  tokenize(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): Uint32Array {
    const text = this.render(messages, options);
    const addGenerationPrompt = options?.addGenerationPrompt ?? true;
    return this.#encode(text, this.#contentRanges(messages, addGenerationPrompt, text));
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
  continuation(messages: readonly ChatMessage[], prefixes: readonly string[]): { text: string; tokens: Uint32Array; prefix: number; start: number } {
    const text = this.render(messages, { addGenerationPrompt: true });
    const ranges = this.#contentRanges(messages, true, text);
    const tokens = this.#encode(text, ranges);
    for (let i = 0; i < prefixes.length; i++) {
      const p = prefixes[i];
      if (p.length === 0 || p.length > text.length || !text.startsWith(p)) continue;
      const clipped = ranges?.filter(([s]) => s < p.length).map(([s, e]): [number, number] => [s, Math.min(e, p.length)]);
      const head = this.#encode(p, clipped);
      if (head.length <= tokens.length && head.every((id, k) => tokens[k] === id)) return { text, tokens, prefix: i, start: head.length };
    }
    return { text, tokens, prefix: -1, start: 0 };
  }

  /** Tokenizes rendered text: special tokens parsed outside `plainRanges`; BOS first when the vocabulary wants it. */
  #encode(text: string, plainRanges: [number, number][] | undefined): Uint32Array {
    const tokens = this.#tokenizer.encode(text, { special: true, addBos: false, addEos: false, addSep: false, plainRanges });
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
  replyFrame(messages: readonly ChatMessage[]): { lead: string; end: string } {
    const prompt = this.render(messages, { addGenerationPrompt: true });
    const withReply = this.#render([...messages, { role: 'assistant', content: REPLY_MARK }, { role: 'user', content: REPLY_MARK }], false);
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
  endOfTurnTokens(messages: readonly ChatMessage[]): readonly number[] {
    const { end } = this.replyFrame(messages);
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

  #render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.#template.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.#specialTokens });
    } catch (e) {
      throw new AglmError('CHAT_TEMPLATE_ERROR', `The chat template (${this.name}) failed on these messages: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * Where each message's content lies in `text` (the rendering of `messages`): render again with a marker in place of
   * each content, then match the marked rendering against `text`, letting each marker stand for the content as is or
   * trimmed (templates that trim or strip). Returns undefined when the two cannot be matched (a template that
   * transforms contents in other ways); the whole text is then parsed for special tokens, as Hugging Face does.
   */
  #contentRanges(messages: readonly ChatMessage[], addGenerationPrompt: boolean, text: string): [number, number][] | undefined {
    if (messages.some((m) => m.content.includes(MARK_OPEN) || m.content.includes(MARK_CLOSE))) return undefined;
    // Empty contents stay empty: templates skip them ('if m.content'), and they hold nothing to protect.
    const marked = this.#render(
      messages.map((m, i) => (m.content === '' ? m : { ...m, content: `${MARK_OPEN}${i}${MARK_CLOSE}` })),
      addGenerationPrompt,
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

/** Checks a messages array: objects with string role and content. */
export function checkMessages(messages: unknown): asserts messages is readonly ChatMessage[] {
  if (!Array.isArray(messages)) throw invalidArgument('messages', 'an array of { role, content } objects', messages);
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw invalidArgument(`messages[${i}]`, 'a { role, content } object', m);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.length === 0) throw invalidArgument(`messages[${i}].role`, 'a non-empty string', role);
    if (typeof content !== 'string') throw invalidArgument(`messages[${i}].content`, 'a string', content);
  });
}
