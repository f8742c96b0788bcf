// The precision planner: picks the weight precision and context size a model is loaded with, for the memory it may
// use, and says why. A pure function of the file, the architecture and the numbers it is given (tests drive it
// directly); loadModel feeds it the machine's free memory.
import { AglmError } from '../errors.js';
import { ggmlTensorBytes, type GgufFile } from '../gguf/index.js';
import { ROWS_TOKENS, type IrGraph } from '../graph/ir.js';
import { PRECISIONS, PRECISION_TYPES, dominantType, precisionBits, precisionOfType, tensorTypeFor, typeName, type Precision } from './weight-types.js';

export type PrecisionRequest = 'auto' | Precision;

export interface PlanRequest {
  file: GgufFile;
  graph: IrGraph;
  /** Context length the model was trained with. */
  trainContext: number;
  precision: PrecisionRequest;
  /** Bytes the model (weights, KV cache, activations) may use. */
  memoryBudget: number;
  budgetSource: string;
  /** KV cache bytes per position (all layers, keys and values). */
  kvBytesPerToken: number;
}

export interface ModelPlan {
  /** The precision the weights are computed in ('f32', 'f16', 'q8_0', ...). */
  precision: Precision | 'mixed';
  /** The file's own precision (the type holding most of its weight bytes). */
  filePrecision: string;
  quantizeOnLoad: boolean;
  /** Weight bytes at the chosen precision. */
  weightBytes: number;
  /** KV cache bytes per position. */
  kvBytesPerToken: number;
  /** The context size contexts get by default: as much of the training context (up to 4096) as fits. */
  contextSize: number;
  memoryBudget: number;
  reasons: string[];
  /** Tensors whose type changes at load (`toType` is the GGML type id loadModel asks the backend for). */
  conversions: { name: string; from: string; to: string; toType: number }[];
}

const GIB = 1024 ** 3;
const fmt = (n: number) => (n >= GIB ? `${(n / GIB).toFixed(2)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`);
const DEFAULT_CONTEXT_CAP = 4096;
const MIN_CONTEXT = 256;

/** Weight bytes and per-tensor types if every matrix were stored at precision p. */
function weightsAt(req: PlanRequest, p: Precision | undefined): { bytes: number; types: Map<string, number> } {
  const types = new Map<string, number>();
  let bytes = 0;
  const tied = !req.file.tensor('output.weight');
  for (const w of req.graph.weights) {
    // A view (rows of a fused tensor) is planned as the matrix it is: its own dims, the file tensor's type.
    const t = { ...req.file.tensor(w.source ?? w.name)!, dims: w.dims };
    let type = t.type;
    if (p !== undefined) {
      const isOutput = w.name === 'output.weight' || (tied && w.name === 'token_embd.weight');
      type = tensorTypeFor(t, PRECISION_TYPES[p], isOutput).type;
      if (t.dims.filter((d) => d > 1).length < 2) type = t.type; // vectors are read as they are stored
    }
    types.set(w.name, type);
    bytes += ggmlTensorBytes(type, t.dims);
  }
  return { bytes, types };
}

/**
 * Activations for a batch of 512 tokens (the default batch size), a generous upper estimate: the arena planner keeps
 * a handful of a layer's values alive at once (6 of the widest token-row value), plus the logits row and 16 MiB of
 * scratch.
 */
function activationBytes(req: PlanRequest): number {
  let tokenWidth = 0;
  let outputWidth = 0;
  for (const v of req.graph.values) {
    if (v.rows === ROWS_TOKENS) tokenWidth = Math.max(tokenWidth, v.width);
    else outputWidth = Math.max(outputWidth, v.width);
  }
  return 512 * 4 * 6 * tokenWidth + 4 * outputWidth + 16 * 1024 ** 2;
}

export function planModel(req: PlanRequest): ModelPlan {
  const fileType = dominantType(req.file.tensors);
  const filePrecision = precisionOfType(fileType);
  const reasons: string[] = [];
  const overhead = activationBytes(req);
  const wantContext = Math.min(req.trainContext, DEFAULT_CONTEXT_CAP);
  const fits = (weights: number, ctx: number) => weights + overhead + ctx * req.kvBytesPerToken <= req.memoryBudget;
  reasons.push(`memory budget ${fmt(req.memoryBudget)} (${req.budgetSource})`);

  let chosen: Precision | undefined;
  if (req.precision !== 'auto') {
    chosen = req.precision;
    reasons.push(`precision ${chosen} as asked`);
  } else {
    // Never up-convert: candidates are the file's precision and every lower one, most precise first.
    const fileBits = filePrecision ? precisionBits(filePrecision) : Infinity;
    const candidates = filePrecision ? PRECISIONS.filter((p) => precisionBits(p) <= fileBits && (p !== 'bf16' || filePrecision === 'bf16')) : [];
    for (const p of candidates) {
      const w = weightsAt(req, p).bytes;
      if (fits(w, Math.min(wantContext, MIN_CONTEXT * 4))) {
        chosen = p;
        reasons.push(p === filePrecision ? `${p} weights (${fmt(w)}) fit as stored` : `${p} weights (${fmt(w)}) are the most precise that fit`);
        break;
      }
      reasons.push(`${p} weights (${fmt(w)}) + KV cache + activations would exceed the budget`);
    }
    if (!filePrecision) {
      reasons.push(`the file's weights are ${typeName(fileType)}: used as stored`);
    } else if (!chosen) {
      throw new AglmError(
        'OUT_OF_MEMORY',
        `The model does not fit in ${fmt(req.memoryBudget)} (${req.budgetSource}) even at ${candidates[candidates.length - 1] ?? filePrecision}. ` +
          `Possible solutions: raise memoryBudget, free memory, or use a smaller model. Plan: ${reasons.join('; ')}`,
      );
    }
  }

  const { bytes: weightBytes, types } = weightsAt(req, chosen === filePrecision && req.precision === 'auto' ? undefined : chosen);
  const conversions: ModelPlan['conversions'] = [];
  for (const w of req.graph.weights) {
    const to = types.get(w.name)!;
    if (to !== w.type) conversions.push({ name: w.name, from: typeName(w.type), to: typeName(to), toType: to });
  }
  if (conversions.length > 0) reasons.push(`${conversions.length} tensors converted at load (${typeName(fileType)} -> ${chosen})`);

  let contextSize = wantContext;
  while (contextSize > MIN_CONTEXT && !fits(weightBytes, contextSize)) contextSize = Math.max(MIN_CONTEXT, contextSize >> 1);
  reasons.push(
    contextSize === wantContext
      ? `context ${contextSize} (${fmt(contextSize * req.kvBytesPerToken)} of KV cache)`
      : `context reduced to ${contextSize} to fit the budget (training context ${req.trainContext})`,
  );
  return {
    precision: chosen ?? filePrecision ?? 'mixed',
    filePrecision: filePrecision ?? typeName(fileType),
    quantizeOnLoad: conversions.length > 0,
    weightBytes,
    kvBytesPerToken: req.kvBytesPerToken,
    contextSize,
    memoryBudget: req.memoryBudget,
    reasons,
    conversions,
  };
}
