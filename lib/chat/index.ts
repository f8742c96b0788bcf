// Chat: templates (the model's own, a custom one, or a built-in) and sessions that keep a conversation in the KV cache.
import type { GgufMetadata } from '../gguf/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { builtinChatTemplate, chooseBuiltinChatTemplate } from './builtin-templates.js';
import { ChatTemplate } from './chat-template.js';

export { ChatTemplate, checkMessages, type ChatMessage, type ApplyChatTemplateOptions } from './chat-template.js';
export { ChatSession, type ChatSessionOptions, type ChatPromptOptions, type ChatTurnStats } from './chat-session.js';
export {
  BUILTIN_CHAT_TEMPLATE_NAMES,
  builtinChatTemplate,
  chooseBuiltinChatTemplate,
  type BuiltinChatTemplateName,
} from './builtin-templates.js';

/**
 * The chat template for a model: `custom` when given, else the file's tokenizer.chat_template, else the built-in one
 * that fits the architecture and vocabulary.
 */
export function resolveChatTemplate(metadata: GgufMetadata, architecture: string, tokenizer: Tokenizer, custom?: string): ChatTemplate {
  if (custom !== undefined) return new ChatTemplate(custom, 'custom', tokenizer, 'the template option');
  const own = metadata.optString('tokenizer.chat_template');
  if (own !== undefined && own.length > 0) return new ChatTemplate(own, 'file', tokenizer, "the model file's tokenizer.chat_template");
  const { name, reason } = chooseBuiltinChatTemplate(architecture, tokenizer);
  return new ChatTemplate(builtinChatTemplate(name), name, tokenizer, `built-in ${name}: the file has no chat template; ${reason}`);
}
