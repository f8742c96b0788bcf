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
  glm4: `[gMASK]<sop>
{%- for m in messages -%}
  {%- if m.content -%}
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

  // Llama 3 instruct: BOS, then a header per message and its trimmed content closed by <|eot_id|>.
  llama3: `{%- if messages -%}{{- bos_token -}}{%- endif -%}
{%- for m in messages -%}
  {{- '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + (m.content | trim) + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}`,

  // ChatML (Qwen, OpenHermes, ...): <|im_start|>role newline content <|im_end|> newline.
  chatml: `{%- for m in messages -%}
  {{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' -}}
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
