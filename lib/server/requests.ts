// OpenAI request bodies checked and turned into what the serving engine runs: /v1/chat/completions, /v1/completions,
// /v1/embeddings, and llama.cpp's /tokenize and /detokenize. Every rejection is a 400 naming the parameter. Unknown
// parameters are ignored, as OpenAI's clients send more than any one server knows.
import type { ChatMessage } from '../chat/index.js';
import { checkToolChoice, checkTools, type ChatTool, type ChatToolCall, type ToolChoice } from '../chat/tools.js';
import type { SamplerOptions } from '../sampler/index.js';
import type { ContentPart } from '../vision/prompt.js';
import { AglmError } from '../errors.js';
import { Grammar } from '../grammar/index.js';
import { ApiError, badParam, badRequest } from './api-error.js';

export interface SamplingSpec extends SamplerOptions {
  /** Most tokens to generate; undefined: until the end of generation or a full context. */
  maxTokens: number | undefined;
  stop: string[];
  /** The grammar the output is held to (response_format, or llama.cpp's grammar / json_schema fields). */
  grammar?: Grammar;
}

interface Common {
  /** Choices per prompt. */
  n: number;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage and no choices. */
  includeUsage: boolean;
  sampling: SamplingSpec;
}

export interface ChatRequestSpec extends Common {
  messages: ChatMessage[];
  /** Tools offered to the model ([] with tool_choice 'none' or none given). */
  tools: ChatTool[];
  toolChoice: ToolChoice;
}

export interface CompletionRequestSpec extends Common {
  /** One or more prompts: text, or token ids. */
  prompts: (string | number[])[];
}

export interface EmbeddingRequestSpec {
  inputs: (string | number[])[];
  encoding: 'float' | 'base64';
}

type Body = Record<string, unknown>;

export function requireObject(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object', undefined, 'invalid_json');
  return body as Body;
}

/** The model a request names, checked against the one served (absent: the served one). */
export function checkModel(body: Body, served: string): void {
  const m = body.model;
  if (m === undefined || m === null) return;
  if (typeof m !== 'string') throw badParam('model', 'a string', m);
  if (m !== served) {
    throw new ApiError(404, 'invalid_request_error', `The model '${m}' does not exist; this server serves '${served}'`, {
      param: 'model',
      code: 'model_not_found',
    });
  }
}

function num(body: Body, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw badParam(key, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, v);
  }
  return v;
}

function bool(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(key, 'a boolean', v);
  return v;
}

function sampling(body: Body, vocabSize: number): SamplingSpec {
  const maxTokens = num(body, 'max_completion_tokens', 1, 1 << 24, true) ?? num(body, 'max_tokens', 1, 1 << 24, true);
  const stopRaw = body.stop;
  let stop: string[] = [];
  if (typeof stopRaw === 'string') stop = [stopRaw];
  else if (Array.isArray(stopRaw) && stopRaw.length <= 16 && stopRaw.every((s) => typeof s === 'string')) stop = stopRaw as string[];
  else if (stopRaw !== undefined && stopRaw !== null) throw badParam('stop', 'a string or an array of up to 16 strings', stopRaw);
  const spec: SamplingSpec = { maxTokens, stop: stop.filter((s) => s.length > 0) };
  const set = <K extends keyof SamplerOptions>(k: K, v: SamplerOptions[K] | undefined) => {
    if (v !== undefined) spec[k] = v as SamplingSpec[K];
  };
  // OpenAI's default temperature and top_p are 1 (plain sampling); top_k and min_p are off unless asked for.
  spec.temperature = num(body, 'temperature', 0, 2) ?? 1;
  spec.topP = num(body, 'top_p', 0, 1) ?? 1;
  spec.topK = num(body, 'top_k', 0, 1 << 24, true) ?? 0;
  spec.minP = num(body, 'min_p', 0, 1) ?? 0;
  set('repeatPenalty', num(body, 'repeat_penalty', 0.01, 10));
  set('presencePenalty', num(body, 'presence_penalty', -2, 2));
  set('frequencyPenalty', num(body, 'frequency_penalty', -2, 2));
  set('seed', num(body, 'seed', 0, Number.MAX_SAFE_INTEGER, true));
  const bias = body.logit_bias;
  if (bias !== undefined && bias !== null) {
    if (typeof bias !== 'object' || Array.isArray(bias)) throw badParam('logit_bias', 'an object of token id -> bias', bias);
    const map = new Map<number, number>();
    for (const [k, v] of Object.entries(bias)) {
      const id = Number(k);
      if (!/^(0|[1-9][0-9]*)$/.test(k) || id >= vocabSize) throw badParam('logit_bias', `token ids from 0 to ${vocabSize - 1} as keys`, k);
      if (typeof v !== 'number' || !(v >= -100 && v <= 100)) throw badParam(`logit_bias.${k}`, 'a number from -100 to 100', v);
      map.set(id, v <= -100 ? -Infinity : v);
    }
    spec.logitBias = map;
  }
  const grammar = grammarOf(body);
  if (grammar) spec.grammar = grammar;
  if (body.logprobs === true || (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false)) {
    throw badRequest('logprobs are not supported by this server', 'logprobs', 'unsupported_parameter');
  }
  return spec;
}

// Compiled grammars of recent requests by their text: clients send the same schema with every request.
const grammarCache = new Map<string, Grammar>();

function compile(param: string, key: string, make: () => Grammar): Grammar {
  let g = grammarCache.get(key);
  if (!g) {
    try {
      g = make();
    } catch (e) {
      if (e instanceof AglmError && e.code === 'INVALID_GRAMMAR') throw badRequest(e.message, param, 'invalid_grammar');
      throw e;
    }
    if (grammarCache.size >= 64) grammarCache.delete(grammarCache.keys().next().value!);
    grammarCache.set(key, g);
  }
  return g;
}

function schemaGrammar(param: string, schema: unknown): Grammar {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    if (schema !== true) throw badParam(param, 'a JSON schema object', schema);
  }
  const text = JSON.stringify(schema);
  if (text.length > 256 * 1024) throw badRequest('The JSON schema is larger than 256 KiB', param);
  return compile(param, 'schema:' + text, () => Grammar.fromJsonSchema(schema));
}

/**
 * The grammar a request asks for: OpenAI's response_format ({ type: 'text' | 'json_object' | 'json_schema' }), or
 * llama.cpp's server fields `grammar` (GBNF text) and `json_schema`. At most one of them.
 */
function grammarOf(body: Body): Grammar | undefined {
  const found: Grammar[] = [];
  const rf = body.response_format as Body | undefined | null;
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'object' || Array.isArray(rf)) throw badParam('response_format', 'an object', rf);
    if (rf.type === 'json_object') {
      // llama.cpp lets json_object carry a schema; OpenAI's means any JSON object.
      found.push(schemaGrammar('response_format.schema', rf.schema ?? { type: 'object' }));
    } else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Body | undefined | null;
      if (js === null || typeof js !== 'object' || Array.isArray(js)) throw badParam('response_format.json_schema', 'an object with a schema', js);
      found.push(schemaGrammar('response_format.json_schema.schema', js.schema ?? { type: 'object' }));
    } else if (rf.type !== 'text') {
      throw badParam('response_format.type', "'text', 'json_object' or 'json_schema'", rf.type);
    }
  }
  if (body.json_schema !== undefined && body.json_schema !== null) found.push(schemaGrammar('json_schema', body.json_schema));
  if (body.grammar !== undefined && body.grammar !== null && body.grammar !== '') {
    if (typeof body.grammar !== 'string') throw badParam('grammar', 'GBNF text (a string)', body.grammar);
    if (body.grammar.length > 256 * 1024) throw badRequest('The grammar is larger than 256 KiB', 'grammar');
    const text = body.grammar;
    found.push(compile('grammar', 'gbnf:' + text, () => new Grammar(text)));
  }
  if (found.length > 1) throw badRequest('Give at most one of response_format, json_schema and grammar', 'grammar');
  return found[0];
}

function common(body: Body, vocabSize: number, maxChoices: number): Common {
  const n = num(body, 'n', 1, maxChoices, true) ?? 1;
  const stream = bool(body, 'stream') ?? false;
  const so = body.stream_options;
  let includeUsage = false;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) throw badParam('stream_options', 'an object', so);
    includeUsage = bool(so as Body, 'include_usage') ?? false;
  }
  return { n, stream, includeUsage, sampling: sampling(body, vocabSize) };
}

/**
 * A message's content: a string, or OpenAI's list of parts: text, and images as `image_url` parts holding a base64
 * `data:` URI ({ type: 'image_url', image_url: { url } }, or the url as a string). Remote URLs are refused: the server
 * fetches nothing on a client's behalf.
 */
function messageContent(content: unknown, path: string, vision: boolean): string | ContentPart[] {
  if (typeof content === 'string') return content;
  if (content === null) return '';
  if (!Array.isArray(content)) throw badParam(`${path}.content`, 'a string or an array of content parts', content);
  const parts: ContentPart[] = [];
  content.forEach((part, i) => {
    const p = part as Body | null;
    const at = `${path}.content[${i}]`;
    if (p === null || typeof p !== 'object') throw badParam(at, 'a content part object', part);
    if (p.type === 'text') {
      if (typeof p.text !== 'string') throw badParam(`${at}.text`, 'a string', p.text);
      const last = parts[parts.length - 1];
      if (last?.type === 'text') last.text += p.text;
      else parts.push({ type: 'text', text: p.text });
    } else if (p.type === 'image_url' || p.type === 'input_image' || p.type === 'image') {
      if (!vision) throw badRequest('This model cannot read images (the server was started without a projector: serve --projector FILE)', at, 'unsupported_content');
      const iu = p.image_url ?? (p as Body).url;
      const url = typeof iu === 'string' ? iu : iu !== null && typeof iu === 'object' ? (iu as Body).url : undefined;
      if (typeof url !== 'string') throw badParam(`${at}.image_url.url`, 'a data: URI string', url);
      if (!url.startsWith('data:')) {
        throw badRequest('Image URLs are not fetched: send the image inline as a data: URI (data:image/png;base64,...)', `${at}.image_url.url`, 'invalid_image_url');
      }
      if (!/^data:image\/[a-z0-9.+-]+(;[^,;]*)*;base64,/i.test(url.slice(0, 200))) {
        throw badRequest("An image data URI must be base64 and of an image type: 'data:image/png;base64,...' or 'data:image/jpeg;base64,...'", `${at}.image_url.url`, 'invalid_image_url');
      }
      parts.push({ type: 'image', image: url });
    } else {
      throw badParam(`${at}.type`, vision ? "'text' or 'image_url'" : "'text'", p.type);
    }
  });
  if (!parts.some((x) => x.type === 'image')) return parts.map((x) => (x as { text: string }).text).join('');
  return parts;
}

/** An AglmError INVALID_ARGUMENT from a library check, as a 400 naming the request's parameter. */
function asParam<T>(param: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AglmError && e.code === 'INVALID_ARGUMENT') throw badRequest(e.message, param, 'invalid_type');
    throw e;
  }
}

function toolCalls(v: unknown, path: string): ChatToolCall[] {
  if (!Array.isArray(v)) throw badParam(path, 'an array of tool calls', v);
  return v.map((c, k) => {
    const call = c as Body | null;
    const fn = call?.function as Body | undefined;
    if (!call || typeof call !== 'object' || !fn || typeof fn !== 'object' || typeof fn.name !== 'string') {
      throw badParam(`${path}[${k}]`, "{ id, type: 'function', function: { name, arguments } }", c);
    }
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    return { id: typeof call.id === 'string' ? call.id : `call_${k}`, type: 'function', function: { name: fn.name, arguments: args } };
  });
}

export function parseChatRequest(raw: unknown, served: string, vocabSize: number, maxChoices: number, vision = false): ChatRequestSpec {
  const body = requireObject(raw);
  checkModel(body, served);
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw badParam('messages', 'a non-empty array of messages', messages);
  const out: ChatMessage[] = messages.map((m, i) => {
    const msg = m as Body | null;
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw badParam(`messages[${i}]`, 'a message object', m);
    const role = msg.role === 'developer' ? 'system' : msg.role;
    if (typeof role !== 'string' || !['system', 'user', 'assistant', 'tool'].includes(role)) {
      throw badParam(`messages[${i}].role`, "one of 'system', 'developer', 'user', 'assistant', 'tool'", msg.role);
    }
    const out: ChatMessage = { role, content: messageContent(msg.content, `messages[${i}]`, vision) };
    if (role === 'assistant' && msg.tool_calls !== undefined && msg.tool_calls !== null) {
      const calls = toolCalls(msg.tool_calls, `messages[${i}].tool_calls`);
      if (calls.length > 0) out.toolCalls = calls;
    }
    if (role === 'tool') {
      if (msg.tool_call_id !== undefined && typeof msg.tool_call_id !== 'string') throw badParam(`messages[${i}].tool_call_id`, 'a string', msg.tool_call_id);
      if (typeof msg.tool_call_id === 'string') out.toolCallId = msg.tool_call_id;
      if (typeof msg.name === 'string') out.name = msg.name;
    }
    return out;
  });
  let tools: ChatTool[] = [];
  if (body.tools !== undefined && body.tools !== null) tools = asParam('tools', () => checkTools(body.tools, 'tools'));
  const toolChoice = asParam('tool_choice', () => checkToolChoice(body.tool_choice ?? undefined, tools, 'tool_choice'));
  if (tools.length === 0 && toolChoice !== 'none') throw badRequest("tool_choice needs tools", 'tool_choice');
  const spec = { ...common(body, vocabSize, maxChoices), messages: out, tools: toolChoice === 'none' ? [] : tools, toolChoice };
  if (toolChoice !== 'auto' && toolChoice !== 'none' && spec.sampling.grammar) {
    throw badRequest('A required tool call cannot be combined with response_format, json_schema or grammar', 'tool_choice');
  }
  return spec;
}

function tokenList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');
}

function checkTokenIds(ids: number[], param: string, vocabSize: number): number[] {
  ids.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw badParam(`${param}[${i}]`, `a token id from 0 to ${vocabSize - 1}`, t);
  });
  return ids;
}

/** Prompts given as a string, token ids, or an array of either. */
function prompts(v: unknown, param: string, vocabSize: number): (string | number[])[] {
  if (typeof v === 'string') return [v];
  if (tokenList(v)) return [checkTokenIds(v, param, vocabSize)];
  if (Array.isArray(v) && v.length > 0 && v.length <= 256) {
    return v.map((p, i) => {
      if (typeof p === 'string') return p;
      if (tokenList(p)) return checkTokenIds(p, `${param}[${i}]`, vocabSize);
      throw badParam(`${param}[${i}]`, 'a string or an array of token ids', p);
    });
  }
  throw badParam(param, 'a string, an array of token ids, or an array of up to 256 of either', v);
}

export function parseCompletionRequest(raw: unknown, served: string, vocabSize: number, maxChoices: number): CompletionRequestSpec {
  const body = requireObject(raw);
  checkModel(body, served);
  if (body.echo === true) throw badRequest('echo is not supported by this server', 'echo', 'unsupported_parameter');
  if (body.suffix !== undefined && body.suffix !== null) throw badRequest('suffix is not supported by this server', 'suffix', 'unsupported_parameter');
  const spec = { ...common(body, vocabSize, maxChoices), prompts: prompts(body.prompt, 'prompt', vocabSize) };
  // OpenAI's legacy completions default to 16 tokens.
  spec.sampling.maxTokens ??= 16;
  if (spec.prompts.length * spec.n > maxChoices) {
    throw badRequest(`prompts x n is ${spec.prompts.length * spec.n}; this server generates at most ${maxChoices} at once`, 'n');
  }
  return spec;
}

export function parseEmbeddingRequest(raw: unknown, served: string, vocabSize: number): EmbeddingRequestSpec {
  const body = requireObject(raw);
  checkModel(body, served);
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw badParam('encoding_format', "'float' or 'base64'", format);
  if (body.dimensions !== undefined && body.dimensions !== null) throw badRequest('dimensions is not supported by this server', 'dimensions', 'unsupported_parameter');
  return { inputs: prompts(body.input, 'input', vocabSize), encoding: format };
}

export function parseTokenizeRequest(raw: unknown): { content: string; addSpecial: boolean; parseSpecial: boolean; withPieces: boolean } {
  const body = requireObject(raw);
  if (typeof body.content !== 'string') throw badParam('content', 'a string', body.content);
  return {
    content: body.content,
    addSpecial: bool(body, 'add_special') ?? false,
    parseSpecial: bool(body, 'parse_special') ?? false,
    withPieces: bool(body, 'with_pieces') ?? false,
  };
}

export function parseDetokenizeRequest(raw: unknown, vocabSize: number): number[] {
  const body = requireObject(raw);
  const t = body.tokens;
  if (!Array.isArray(t) || !t.every((x) => typeof x === 'number')) throw badParam('tokens', 'an array of token ids', t);
  return checkTokenIds(t, 'tokens', vocabSize);
}
