// The GGML tensor type table: ids, names, block sizes and bytes per block, and tensor byte sizes.
import { AglmError } from '../errors.js';

/** Every tensor type id ggml knows. Ids 4, 5 (Q4_2, Q4_3) and 31-33, 36-38 (repacked layouts) were removed and are absent. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;

export type GgmlTypeName = keyof typeof GgmlType;
export type GgmlTypeId = (typeof GgmlType)[GgmlTypeName];

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: GgmlTypeName;
  /** Elements per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

const QK_K = 256;

/** [blockSize, typeSize] per type, from the block layouts in ggml-common.h. */
const LAYOUTS: Record<GgmlTypeName, readonly [number, number]> = {
  F32: [1, 4],
  F16: [1, 2],
  Q4_0: [32, 2 + 16],
  Q4_1: [32, 2 + 2 + 16],
  Q5_0: [32, 2 + 4 + 16],
  Q5_1: [32, 2 + 2 + 4 + 16],
  Q8_0: [32, 2 + 32],
  Q8_1: [32, 2 + 2 + 32],
  Q2_K: [QK_K, 16 + 64 + 2 + 2],
  Q3_K: [QK_K, 32 + 64 + 12 + 2],
  Q4_K: [QK_K, 2 + 2 + 12 + 128],
  Q5_K: [QK_K, 2 + 2 + 12 + 32 + 128],
  Q6_K: [QK_K, 128 + 64 + 16 + 2],
  Q8_K: [QK_K, 4 + 256 + 32],
  IQ2_XXS: [QK_K, 2 + 64],
  IQ2_XS: [QK_K, 2 + 64 + 8],
  IQ3_XXS: [QK_K, 2 + 96],
  IQ1_S: [QK_K, 2 + 32 + 16],
  IQ4_NL: [32, 2 + 16],
  IQ3_S: [QK_K, 2 + 64 + 8 + 32 + 4],
  IQ2_S: [QK_K, 2 + 64 + 8 + 8],
  IQ4_XS: [QK_K, 2 + 2 + 4 + 128],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  F64: [1, 8],
  IQ1_M: [QK_K, 32 + 16 + 8],
  BF16: [1, 2],
  TQ1_0: [QK_K, 48 + 4 + 2],
  TQ2_0: [QK_K, 64 + 2],
  MXFP4: [32, 1 + 16],
};

const BY_ID: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  (Object.keys(GgmlType) as GgmlTypeName[]).map((name) => {
    const [blockSize, typeSize] = LAYOUTS[name];
    const info: GgmlTypeInfo = Object.freeze({ id: GgmlType[name], name, blockSize, typeSize });
    return [info.id, info];
  }),
);

/** The type's layout, or undefined for an id ggml does not know (or no longer supports). */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** The type's name (`Q4_K`), or `unknown(<id>)`. */
export function ggmlTypeName(id: number): string {
  return BY_ID.get(id)?.name ?? `unknown(${id})`;
}

function requireInfo(type: number): GgmlTypeInfo {
  const info = BY_ID.get(type);
  if (!info) throw new AglmError('INVALID_ARGUMENT', `Unknown GGML tensor type id ${type}`);
  return info;
}

/** Bytes in one row of `ne0` elements; throws if `ne0` is not a whole number of blocks. */
export function ggmlRowBytes(type: number, ne0: number): number {
  const info = requireInfo(type);
  if (!Number.isSafeInteger(ne0) || ne0 < 0 || ne0 % info.blockSize !== 0) {
    throw new AglmError(
      'INVALID_ARGUMENT',
      `A row of ${ne0} elements is not a whole number of ${info.name} blocks (${info.blockSize} elements each)`,
    );
  }
  return (ne0 / info.blockSize) * info.typeSize;
}

/** Bytes of a tensor of this type with dims in ne order (dims[0] is the contiguous one). */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number {
  if (dims.length === 0) return ggmlRowBytes(type, 1);
  let rows = 1;
  for (let i = 1; i < dims.length; i++) {
    const d = dims[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new AglmError('INVALID_ARGUMENT', `Tensor dimension ${i} is ${d}, not a non-negative integer`);
    }
    rows *= d;
  }
  return ggmlRowBytes(type, dims[0]) * rows;
}
