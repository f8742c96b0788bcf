// The chat templates used when a model file has no tokenizer.chat_template, and the rule that picks one from the
// architecture and the vocabulary. Each renders the messages the way the family's own template does (checked
// against the official templates in test/chat/templates.test.ts); the wording here is this project's.
import type { Tokenizer } from '../tokenizer/index.js';

export const BUILTIN_CHAT_TEMPLATE_NAMES = ['glm4', 'chatglm3', 'llama2', 'llama3', 'chatml'] as const;
export type BuiltinChatTemplateName = (typeof BUILTIN_CHAT_TEMPLATE_NAMES)[number];

// Jinja sources. `\\n` is a newline escape inside a Jinja string literal; whitespace between tags is trimmed by the
// `-` markers, so the line breaks below are layout only.
const SOURCES: Record<BuiltinChatTemplateName, string> = {
  // GLM-4 (chatglm/glm4 architectures, byte-level BPE): [gMASK]<sop>, then <|role|> + optional metadata + newline +
  // content for each message that has content; the reply starts after <|assistant|> (the model writes the newline).
  // Tools: a system block listing each function as JSON; a call is an assistant turn with the function's name as its
  // metadata and the arguments as JSON; a result is an <|observation|> turn.
  glm4: `[gMASK]<sop>
{%- if tools -%}
  {{- '<|system|>\\n# 可用工具' -}}
  {%- for t in tools -%}
    {{- '\\n\\n## ' + t.function.name + '\\n\\n' + (t.function | tojson(indent=4)) + '\\n在调用上述函数时，请使用 Json 格式表示调用的参数。' -}}
  {%- endfor -%}
{%- endif -%}
{%- for m in messages -%}
  {%- if m.role == 'assistant' and m.tool_calls -%}
    {%- if m.content -%}{{- '<|assistant|>\\n' + m.content -}}{%- endif -%}
    {%- for c in m.tool_calls -%}
      {{- '<|assistant|>' + c.function.name + '\\n' + (c.function.arguments | tojson) -}}
    {%- endfor -%}
  {%- elif m.role == 'tool' -%}
    {{- '<|observation|>\\n' + m.content -}}
  {%- elif m.content -%}
    {{- '<|' + m.role + '|>' + (m.metadata or '') + '\\n' + m.content -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}`,

  // ChatGLM3 (SentencePiece): [gMASK]sop before the first message, <|role|> + newline + space + content per message.
  chatglm3: `{%- for m in messages -%}
  {%- if loop.first -%}{{- '[gMASK]sop' -}}{%- endif -%}
  {{- '<|' + m.role + '|>\\n ' + m.content -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}`,

  // Llama 2 chat: an optional system message goes inside the first [INST] between <<SYS>> markers; each user turn is
  // BOS [INST] text [/INST], each reply is space + text + space + EOS; user and assistant must alternate.
  llama2: `{%- set system = none -%}
{%- set turns = messages -%}
{%- if messages and messages[0].role == 'system' -%}
  {%- set system = messages[0].content -%}
  {%- set turns = messages[1:] -%}
{%- endif -%}
{%- for m in turns -%}
  {%- if (m.role == 'user') != (loop.index0 % 2 == 0) -%}
    {{- raise_exception('Llama 2 chat needs user and assistant messages in turn, starting with the user') -}}
  {%- endif -%}
  {%- set text = m.content -%}
  {%- if loop.first and system is not none -%}
    {%- set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + text -%}
  {%- endif -%}
  {%- if m.role == 'user' -%}
    {{- bos_token + '[INST] ' + (text | trim) + ' [/INST]' -}}
  {%- else -%}
    {{- ' ' + (text | trim) + ' ' + eos_token -}}
  {%- endif -%}
{%- endfor -%}`,

  // Llama 3 instruct: BOS, then a header per message and its trimmed content closed by <|eot_id|>. Tools (Llama 3.1's
  // JSON tool calling): "Environment: ipython" in the system header, the functions as JSON before the first user
  // message, a call as an assistant turn {"name", "parameters"}, a result as an ipython turn.
  llama3: `{%- if messages -%}{{- bos_token -}}{%- endif -%}
{%- if tools -%}
  {{- '<|start_header_id|>system<|end_header_id|>\\n\\nEnvironment: ipython\\n\\n' -}}
  {%- if messages and messages[0].role == 'system' -%}{{- messages[0].content | trim -}}{%- endif -%}
  {{- '<|eot_id|>' -}}
{%- endif -%}
{%- set ns = namespace(listed=false) -%}
{%- for m in messages -%}
  {%- if tools and m.role == 'system' -%}
  {%- elif m.role == 'assistant' and m.tool_calls -%}
    {%- for c in m.tool_calls -%}
      {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n{"name": "' + c.function.name + '", "parameters": ' + (c.function.arguments | tojson) + '}<|eot_id|>' -}}
    {%- endfor -%}
  {%- elif m.role == 'tool' -%}
    {{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' + (m.content | trim) + '<|eot_id|>' -}}
  {%- elif tools and m.role == 'user' and not ns.listed -%}
    {%- set ns.listed = true -%}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\\n\\nRespond in the format {"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.\\n\\n' -}}
    {%- for t in tools -%}{{- (t | tojson(indent=4)) + '\\n\\n' -}}{%- endfor -%}
    {{- (m.content | trim) + '<|eot_id|>' -}}
  {%- else -%}
    {{- '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + (m.content | trim) + '<|eot_id|>' -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}`,

  // ChatML (Qwen, OpenHermes, ...): <|im_start|>role newline content <|im_end|> newline. Tools (the Hermes / Qwen 2.5
  // form): the functions as JSON inside <tools> in the system message, a call as <tool_call> JSON </tool_call> in the
  // assistant's message, results as <tool_response> blocks in a user message.
  chatml: `{%- if tools -%}
  {{- '<|im_start|>system\\n' -}}
  {%- if messages and messages[0].role == 'system' -%}{{- messages[0].content + '\\n\\n' -}}{%- endif -%}
  {{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}
  {%- for t in tools -%}{{- '\\n' + (t | tojson) -}}{%- endfor -%}
  {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}
{%- endif -%}
{%- for m in messages -%}
  {%- if tools and m.role == 'system' and loop.first -%}
  {%- elif m.role == 'assistant' and m.tool_calls -%}
    {{- '<|im_start|>assistant' -}}
    {%- if m.content -%}{{- '\\n' + m.content -}}{%- endif -%}
    {%- for c in m.tool_calls -%}
      {{- '\\n<tool_call>\\n{"name": "' + c.function.name + '", "arguments": ' + (c.function.arguments | tojson) + '}\\n</tool_call>' -}}
    {%- endfor -%}
    {{- '<|im_end|>\\n' -}}
  {%- elif m.role == 'tool' -%}
    {%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
    {{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' -}}
    {%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}
  {%- else -%}
    {{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}`,
};

/** The Jinja source of a built-in template. */
export function builtinChatTemplate(name: BuiltinChatTemplateName): string {
  return SOURCES[name];
}

/** Which built-in template fits a model without one, and why. */
export function chooseBuiltinChatTemplate(architecture: string, tokenizer: Tokenizer): { name: BuiltinChatTemplateName; reason: string } {
  const has = (piece: string) => tokenizer.vocab.idOf(piece) !== undefined;
  if (has('<|im_start|>') && has('<|im_end|>')) return { name: 'chatml', reason: 'the vocabulary has <|im_start|> and <|im_end|>' };
  if (has('<|start_header_id|>') && has('<|eot_id|>')) {
    return { name: 'llama3', reason: 'the vocabulary has <|start_header_id|> and <|eot_id|>' };
  }
  if (architecture === 'glm4') return { name: 'glm4', reason: 'the glm4 architecture (GLM-4-0414)' };
  if (architecture === 'chatglm' || (has('[gMASK]') && has('<|user|>'))) {
    if (has('<sop>')) return { name: 'glm4', reason: 'a GLM vocabulary with <sop> (GLM-4)' };
    if (has('sop')) return { name: 'chatglm3', reason: 'a GLM vocabulary with sop (ChatGLM3)' };
    return tokenizer.family === 'spm'
      ? { name: 'chatglm3', reason: `the ${architecture} architecture with a SentencePiece vocabulary (ChatGLM3)` }
      : { name: 'glm4', reason: `the ${architecture} architecture with a BPE vocabulary (GLM-4)` };
  }
  if (tokenizer.family === 'spm') return { name: 'llama2', reason: 'a SentencePiece vocabulary without chat tokens (Llama 2 style)' };
  return { name: 'chatml', reason: 'no family-specific chat tokens in the vocabulary (ChatML, the common default)' };
}
