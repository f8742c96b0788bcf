// The OpenAI response objects (chat.completion, chat.completion.chunk, text_completion, embeddings, model list) built
// from the engine's results. Shared by the HTTP server and the batch runner, so both answer in the same shapes.
import { randomBytes } from 'node:crypto';
import type { ChoiceResult, FinishReason, GenerationResult, Timings, Usage } from './engine.js';

export function requestId(prefix: 'chatcmpl' | 'cmpl' | 'batch_req'): string {
  return `${prefix}-${randomBytes(12).toString('base64url')}`;
}

export function usageJson(u: Usage): { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } } {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

export function timingsJson(t: Timings): Record<string, number> {
  return {
    cache_n: t.cacheN,
    prompt_n: t.promptN,
    prompt_ms: t.promptMs,
    prompt_per_second: t.promptPerSecond,
    predicted_n: t.predictedN,
    predicted_ms: t.predictedMs,
    predicted_per_second: t.predictedPerSecond,
  };
}

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

export function chatCompletionJson(meta: ResponseMeta, r: GenerationResult): object {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: r.choices.map((c: ChoiceResult) => ({
      index: c.index,
      message: c.toolCalls?.length
        ? { role: 'assistant', content: c.text === '' ? null : c.text, tool_calls: c.toolCalls.map((t) => ({ id: t.id, type: t.type, function: { ...t.function } })) }
        : { role: 'assistant', content: c.text },
      logprobs: null,
      finish_reason: c.finishReason,
    })),
    usage: usageJson(r.usage),
    timings: timingsJson(r.timings),
  };
}

export function completionJson(meta: ResponseMeta, r: GenerationResult): object {
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: r.choices.map((c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finishReason })),
    usage: usageJson(r.usage),
    timings: timingsJson(r.timings),
  };
}

/** One streamed chunk: a choice's first delta carries the role (chat), the last one its finish reason. */
export function chunkJson(
  kind: 'chat' | 'completion',
  meta: ResponseMeta,
  index: number,
  delta: { text?: string; role?: boolean; finish?: FinishReason; toolCalls?: object[] },
): object {
  if (kind === 'chat') {
    const d: Record<string, unknown> = {};
    if (delta.role) d.role = 'assistant';
    if (delta.text !== undefined) d.content = delta.text;
    if (delta.toolCalls) d.tool_calls = delta.toolCalls;
    return {
      id: meta.id,
      object: 'chat.completion.chunk',
      created: meta.created,
      model: meta.model,
      choices: [{ index, delta: d, logprobs: null, finish_reason: delta.finish ?? null }],
    };
  }
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index, text: delta.text ?? '', logprobs: null, finish_reason: delta.finish ?? null }],
  };
}

/**
 * The last chunk of a stream when stream_options.include_usage asks for it (only then, as OpenAI: clients read
 * choices[0] of every other chunk): no choices, the usage, and the timings.
 */
export function usageChunkJson(kind: 'chat' | 'completion', meta: ResponseMeta, r: GenerationResult): object {
  return {
    id: meta.id,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: usageJson(r.usage),
    timings: timingsJson(r.timings),
  };
}

export function embeddingsJson(model: string, vectors: Float32Array[], promptTokens: number, encoding: 'float' | 'base64'): object {
  return {
    object: 'list',
    model,
    data: vectors.map((v, index) => ({
      object: 'embedding',
      index,
      embedding: encoding === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
    })),
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

export function modelJson(id: string, created: number): object {
  return { id, object: 'model', created, owned_by: 'open-autoglm' };
}
