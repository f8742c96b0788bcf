// Tool calls: OpenAI's tool definitions and choices checked, the call format of a chat template (GLM-4's
// `name\n{arguments}` turn, Llama 3.1's JSON `{"name", "parameters"}` reply, and the Hermes/ChatML `<tool_call>` tags
// that any other template gets through its system prompt), the model's reply parsed into calls (also while it
// streams: text is passed on until it can only be a call), and the GBNF grammar that forces a call whose arguments
// follow the tool's JSON schema.
import { randomBytes } from 'node:crypto';
import { invalidArgument } from '../errors.js';
import { gbnfLiteral } from '../grammar/gbnf.js';
import { jsonSchemaToGbnf } from '../grammar/json-schema.js';

/** A tool the model may call (OpenAI's shape). */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** 'auto' (default with tools): the model chooses; 'none': no tools; 'required': some call; or one named function. */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

/** A call the model made: its id, the function's name, and the arguments as JSON text. */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** How a template writes calls: GLM-4's, Llama 3.1's JSON, or Hermes/ChatML `<tool_call>` tags. */
export type ToolCallStyle = 'glm4' | 'llama3' | 'hermes';

const NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

/** Checks OpenAI tool definitions; also takes `{ name, description, parameters }` and returns the OpenAI shape. */
export function checkTools(tools: unknown, param = 'tools'): ChatTool[] {
  if (!Array.isArray(tools)) throw invalidArgument(param, 'an array of tools', tools);
  const seen = new Set<string>();
  return tools.map((t, i) => {
    if (t === null || typeof t !== 'object') throw invalidArgument(`${param}[${i}]`, 'a tool object', t);
    const o = t as Record<string, unknown>;
    const fn = (o.type === 'function' ? o.function : o.type === undefined && 'name' in o ? o : undefined) as Record<string, unknown> | undefined;
    if (fn === undefined || fn === null || typeof fn !== 'object') throw invalidArgument(`${param}[${i}]`, "{ type: 'function', function: { name, description?, parameters? } }", t);
    if (typeof fn.name !== 'string' || !NAME.test(fn.name)) throw invalidArgument(`${param}[${i}].function.name`, 'a name of 1 to 64 letters, digits, _ . -', fn.name);
    if (seen.has(fn.name)) throw invalidArgument(`${param}[${i}].function.name`, 'a name no other tool has', fn.name);
    seen.add(fn.name);
    if (fn.description !== undefined && typeof fn.description !== 'string') throw invalidArgument(`${param}[${i}].function.description`, 'a string', fn.description);
    const p = fn.parameters;
    if (p !== undefined && (p === null || typeof p !== 'object' || Array.isArray(p))) throw invalidArgument(`${param}[${i}].function.parameters`, 'a JSON schema object', p);
    const out: ChatTool['function'] = { name: fn.name };
    if (fn.description !== undefined) out.description = fn.description as string;
    if (p !== undefined) out.parameters = p as Record<string, unknown>;
    return { type: 'function' as const, function: out };
  });
}

export function checkToolChoice(choice: unknown, tools: readonly ChatTool[], param = 'toolChoice'): ToolChoice {
  if (choice === undefined) return tools.length > 0 ? 'auto' : 'none';
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  const c = choice as { type?: unknown; function?: { name?: unknown } } | null;
  if (c && typeof c === 'object' && c.type === 'function' && c.function && typeof c.function.name === 'string') {
    const name = c.function.name;
    if (!tools.some((t) => t.function.name === name)) throw invalidArgument(`${param}.function.name`, `the name of one of the tools (${tools.map((t) => t.function.name).join(', ')})`, name);
    return { type: 'function', function: { name } };
  }
  throw invalidArgument(param, "'auto', 'none', 'required' or { type: 'function', function: { name } }", choice);
}

export function toolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

/** The arguments as compact JSON text (an object given as a string is kept as written). */
function argumentsText(v: unknown): string | undefined {
  if (typeof v === 'string') {
    try {
      const o = JSON.parse(v);
      return o !== null && typeof o === 'object' && !Array.isArray(o) ? v : undefined;
    } catch {
      return undefined;
    }
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : undefined;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface ParsedReply {
  /** The reply's text without the calls. */
  content: string;
  calls: ChatToolCall[];
}

const HERMES_OPEN = '<tool_call>';
const HERMES_CLOSE = '</tool_call>';

/** The calls in a finished reply (its text after the template's lead); none when it is plain text. */
export function parseToolCalls(style: ToolCallStyle, text: string, tools: readonly ChatTool[]): ParsedReply {
  const known = (name: unknown): name is string => typeof name === 'string' && tools.some((t) => t.function.name === name);
  const call = (name: string, args: string): ChatToolCall => ({ id: toolCallId(), type: 'function', function: { name, arguments: args } });
  if (style === 'hermes') {
    const at = text.indexOf(HERMES_OPEN);
    if (at < 0) return { content: text, calls: [] };
    const calls: ChatToolCall[] = [];
    let pos = at;
    while (pos >= 0) {
      const start = pos + HERMES_OPEN.length;
      const end = text.indexOf(HERMES_CLOSE, start);
      const o = parseJsonObject(text.slice(start, end < 0 ? undefined : end).trim());
      const args = o ? argumentsText(o.arguments ?? o.parameters ?? {}) : undefined;
      if (!o || !known(o.name) || args === undefined) return { content: text, calls: [] };
      calls.push(call(o.name, args));
      if (end < 0) break;
      pos = text.indexOf(HERMES_OPEN, end + HERMES_CLOSE.length);
    }
    return { content: text.slice(0, at).trimEnd(), calls };
  }
  if (style === 'llama3') {
    const body = text.trim().replace(/^<\|python_tag\|>/, '').trim();
    if (!body.startsWith('{')) return { content: text, calls: [] };
    const calls: ChatToolCall[] = [];
    for (const part of body.split(/\s*;\s*(?=\{)/)) {
      const o = parseJsonObject(part);
      const args = o ? argumentsText(o.parameters ?? o.arguments ?? {}) : undefined;
      if (!o || !known(o.name) || args === undefined) return { content: text, calls: [] };
      calls.push(call(o.name, args));
    }
    return { content: '', calls };
  }
  // glm4: the turn starts with the function's name on its own line (in place of the newline of a plain reply).
  const m = /^([a-zA-Z0-9_.-]{1,64})\n([\s\S]*)$/.exec(text);
  if (!m || !known(m[1])) return { content: text, calls: [] };
  const args = argumentsText(parseJsonObject(m[2].trim()));
  if (args === undefined) return { content: text, calls: [] };
  return { content: '', calls: [call(m[1], args)] };
}

/**
 * Passes a streaming reply's text on while it cannot be (the start of) a call; holds it back once it may be one.
 * `push` returns the text safe to show; `finish` parses the whole reply.
 */
export class ToolCallFilter {
  #all = '';
  #shown = 0;
  #mode: 'undecided' | 'text' | 'call' = 'undecided';
  constructor(
    readonly style: ToolCallStyle,
    readonly tools: readonly ChatTool[],
  ) {}

  push(text: string): string {
    this.#all += text;
    if (this.#mode === 'call') return '';
    const all = this.#all;
    let safe = all.length;
    if (this.style === 'hermes') {
      const at = all.indexOf(HERMES_OPEN);
      if (at >= 0) {
        this.#mode = 'call';
        safe = at;
      } else {
        // Hold back a tail that may be the start of '<tool_call>'.
        for (let k = Math.min(HERMES_OPEN.length - 1, all.length); k > 0; k--) {
          if (HERMES_OPEN.startsWith(all.slice(all.length - k))) {
            safe = all.length - k;
            break;
          }
        }
      }
    } else if (this.#mode === 'undecided') {
      this.#mode = this.#decide(all);
      if (this.#mode !== 'text') safe = 0;
    }
    const out = safe > this.#shown ? all.slice(this.#shown, safe) : '';
    this.#shown = Math.max(this.#shown, safe);
    return out;
  }

  /** llama3: a call starts with '{' (or <|python_tag|>); glm4: with a tool's name and a newline, a reply with '\n'. */
  #decide(all: string): 'undecided' | 'text' | 'call' {
    if (this.style === 'llama3') {
      const head = all.trimStart();
      if (head.startsWith('{') || head.startsWith('<|python_tag|>')) return 'call';
      return head === '' || '<|python_tag|>'.startsWith(head) ? 'undecided' : 'text';
    }
    if (all === '') return 'undecided';
    if (all[0] === '\n') return 'text';
    const nl = all.indexOf('\n');
    const names = this.tools.map((t) => t.function.name);
    if (nl >= 0) return names.includes(all.slice(0, nl)) ? 'call' : 'text';
    return names.some((n) => n.startsWith(all)) ? 'undecided' : 'text';
  }

  /** The whole reply parsed; `rest` is text held back that turned out not to be a call. */
  finish(): ParsedReply & { rest: string } {
    const parsed = parseToolCalls(this.style, this.#all, this.tools);
    if (parsed.calls.length === 0) {
      const rest = this.#all.slice(this.#shown);
      this.#shown = this.#all.length;
      return { ...parsed, rest };
    }
    return { ...parsed, rest: '' };
  }
}

/**
 * GBNF for a reply that is a call, in the style's syntax, to one of `tools` (or the named one), its arguments held
 * to the tool's parameters schema (any JSON object when it has none).
 */
export function toolCallGrammar(style: ToolCallStyle, tools: readonly ChatTool[], only?: string): string {
  const chosen = only === undefined ? tools : tools.filter((t) => t.function.name === only);
  const parts: string[] = [];
  const rules: string[] = [];
  chosen.forEach((t, i) => {
    const prefix = `t${i}-`;
    rules.push(jsonSchemaToGbnf(t.function.parameters ?? { type: 'object' }, { prefix, whitespace: 'none' }));
    const name = t.function.name;
    if (style === 'hermes') parts.push(`${gbnfLiteral(`${HERMES_OPEN}\n{"name": "${name}", "arguments": `)} ${prefix}root ${gbnfLiteral(`}\n${HERMES_CLOSE}`)}`);
    else if (style === 'llama3') parts.push(`${gbnfLiteral(`{"name": "${name}", "parameters": `)} ${prefix}root "}"`);
    else parts.push(`${gbnfLiteral(`${name}\n`)} ${prefix}root`);
  });
  return `root ::= ${parts.join(' | ')}\n${rules.join('')}`;
}
