// Which type each tensor of a model gets when the model is stored or loaded at a given precision: the one rule shared
// by `quantize` (files) and the precision planner (quantize-on-load).
import { GgmlType, ggmlTypeInfo, ggmlTypeName, type GgufTensorInfo } from '../gguf/index.js';

export const PRECISIONS = ['f32', 'bf16', 'f16', 'q8_0', 'q4_0'] as const;
export type Precision = (typeof PRECISIONS)[number];

export const PRECISION_TYPES: Record<Precision, number> = {
  f32: GgmlType.F32,
  bf16: GgmlType.BF16,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
};

/** Bits per weight of each precision (block scales included), from most to least precise. */
export function precisionBits(p: Precision): number {
  const info = ggmlTypeInfo(PRECISION_TYPES[p])!;
  return (info.typeSize * 8) / info.blockSize;
}

/** The precision a type belongs to, if it is one of ours. */
export function precisionOfType(type: number): Precision | undefined {
  return PRECISIONS.find((p) => PRECISION_TYPES[p] === type);
}

/**
 * The type a tensor gets at precision `want`: vectors (norms, biases) stay F32; the output projection keeps at least
 * 8 bits (llama.cpp does the same: it is the most sensitive matrix); matrices whose rows do not fill whole blocks fall
 * back to F16.
 */
export function tensorTypeFor(t: Pick<GgufTensorInfo, 'dims'>, want: number, isOutput: boolean): { type: number; reason?: string } {
  if (t.dims.filter((d) => d > 1).length < 2) return { type: GgmlType.F32, reason: 'vectors stay F32' };
  let type = want;
  let reason: string | undefined;
  if (isOutput && want === GgmlType.Q4_0) {
    type = GgmlType.Q8_0;
    reason = 'the output projection keeps 8 bits';
  }
  const block = ggmlTypeInfo(type)!.blockSize;
  if (t.dims[0] % block !== 0) return { type: GgmlType.F16, reason: `row length ${t.dims[0]} is not a multiple of ${block}; F16 instead` };
  return { type, reason };
}

/** The type that holds most of a file's weight bytes (its effective precision). */
export function dominantType(tensors: readonly GgufTensorInfo[]): number {
  const bytes = new Map<number, number>();
  for (const t of tensors) if (t.dims.filter((d) => d > 1).length >= 2) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.byteLength);
  let best = GgmlType.F32 as number;
  let most = -1;
  for (const [type, n] of bytes) if (n > most) [best, most] = [type, n];
  return best;
}

export function typeName(type: number): string {
  return ggmlTypeName(type);
}
