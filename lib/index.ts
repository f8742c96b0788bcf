// open-autoglm: run GLM- and LLaMA-family GGUF models locally from Node.js. Re-exports the public API only.
export { loadModel, Model, DEFAULT_MODEL_PATH, CPU_VARIANTS } from './model/model.js';
export type { LoadModelOptions, TokenizeOptions, CpuVariant, ModelBackendInfo } from './model/model.js';
export { Context } from './model/context.js';
export type { ContextOptions, EvaluateOptions } from './model/context.js';
export type { EmbedOptions, EmbedPooling } from './model/embed.js';
export type { GenerateOptions, GenerateChunk, CompletionResult, CompletionTimings, StopReason } from './model/generate.js';
export { ChatSession, ChatTemplate, BUILTIN_CHAT_TEMPLATE_NAMES, builtinChatTemplate } from './chat/index.js';
export type { ChatMessage, ChatSessionOptions, ChatPromptOptions, ChatTurnStats, ApplyChatTemplateOptions, BuiltinChatTemplateName } from './chat/index.js';
export type { SamplerOptions } from './sampler/index.js';
export { Sampler } from './sampler/index.js';
export { Tokenizer } from './tokenizer/index.js';
export { systemInfo, type SystemInfo } from './backends/system-info.js';
export type { ModelPlan, PrecisionRequest } from './backends/planner.js';
export { PRECISIONS, type Precision } from './backends/weight-types.js';
export { AglmError, isAglmError, ERROR_CODES, type ErrorCode } from './errors.js';
export { quantizeModel, QUANTIZE_TYPES, type QuantizeType, type QuantizeOptions, type QuantizeReport } from './tools/quantize.js';
export { readGguf, writeGguf, GgmlType, GgufValueType } from './gguf/index.js';
export type { GgufFile, GgufMetadata, GgufEntry, GgufValue, GgufTensorInfo, GgufWriteSpec } from './gguf/index.js';
