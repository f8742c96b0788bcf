// perplexity(): how well a model predicts a text, measured as llama.cpp does it: the text is cut into chunks of the
// context size, each chunk starts with BOS, and the second half of each chunk is scored (every scored token sees at
// least half a context of history). Used to measure the quality cost of each weight precision.
import { invalidArgument } from '../errors.js';
import { alignedFloat32 } from '../buffers/aligned.js';
import type { Model } from '../model/model.js';
import { checkObject, optInt, optSignal } from '../validate.js';

export interface PerplexityOptions {
  /** Tokens per chunk. Default: 512, or the model's training context if smaller. */
  contextSize?: number;
  threads?: number;
  signal?: AbortSignal;
}

export interface PerplexityResult {
  perplexity: number;
  /** Standard error of the perplexity estimate (from the spread of the per-token log-losses). */
  standardError: number;
  scoredTokens: number;
  chunks: number;
  contextSize: number;
}

/** -log softmax(row)[target], computed stably. */
function negativeLogLikelihood(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return Math.log(sum) + max - row[target];
}

export async function perplexity(model: Model, text: string, options?: PerplexityOptions): Promise<PerplexityResult> {
  if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
  const o = checkObject<PerplexityOptions>('perplexity options', options);
  const n = optInt('contextSize', o.contextSize, 16, 1 << 20, Math.min(512, model.contextLength));
  const signal = optSignal('signal', o.signal);
  const tokens = model.tokenize(text, { addBos: false });
  const bos = model.tokenizer.bos;
  const chunks = Math.floor(tokens.length / n);
  if (chunks < 1) throw invalidArgument('text', `a text of at least ${n} tokens (the context size)`, `${tokens.length} tokens`);
  await using ctx = model.createContext({ contextSize: n, threads: o.threads });
  const logits = alignedFloat32(n * model.vocabSize);
  const chunk = new Uint32Array(n);
  let sum = 0;
  let sumSq = 0;
  let count = 0;
  for (let c = 0; c < chunks; c++) {
    chunk.set(tokens.subarray(c * n, (c + 1) * n));
    if (bos !== undefined) chunk[0] = bos;
    ctx.clear();
    await ctx.evaluateInto(chunk, 'all', logits, signal);
    for (let i = Math.floor(n / 2); i < n - 1; i++) {
      const nll = negativeLogLikelihood(logits.subarray(i * model.vocabSize, (i + 1) * model.vocabSize), chunk[i + 1]);
      sum += nll;
      sumSq += nll * nll;
      count++;
    }
  }
  const mean = sum / count;
  const variance = Math.max(0, sumSq / count - mean * mean);
  const ppl = Math.exp(mean);
  return { perplexity: ppl, standardError: ppl * Math.sqrt(variance / Math.max(1, count - 1)), scoredTokens: count, chunks, contextSize: n };
}
