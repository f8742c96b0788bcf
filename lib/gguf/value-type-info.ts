// Facts about each GGUF metadata value type: its name, fixed byte size, and which typed array holds it.
import { GgufValueType } from './types.js';

/** Array nesting allowed in metadata values: an array of arrays is depth 2. */
export const MAX_ARRAY_DEPTH = 8;

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 65535;

type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | Float32ArrayConstructor
  | BigUint64ArrayConstructor
  | BigInt64ArrayConstructor
  | Float64ArrayConstructor;

/** Byte size of each fixed-size type; STRING and ARRAY have none. */
const FIXED_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

const TYPED_ARRAYS: Partial<Record<GgufValueType, TypedArrayCtor>> = {
  [GgufValueType.UINT8]: Uint8Array,
  [GgufValueType.INT8]: Int8Array,
  [GgufValueType.UINT16]: Uint16Array,
  [GgufValueType.INT16]: Int16Array,
  [GgufValueType.UINT32]: Uint32Array,
  [GgufValueType.INT32]: Int32Array,
  [GgufValueType.FLOAT32]: Float32Array,
  [GgufValueType.BOOL]: Uint8Array,
  [GgufValueType.UINT64]: BigUint64Array,
  [GgufValueType.INT64]: BigInt64Array,
  [GgufValueType.FLOAT64]: Float64Array,
};

export function isValueType(t: number): t is GgufValueType {
  return Number.isInteger(t) && t >= GgufValueType.UINT8 && t <= GgufValueType.FLOAT64;
}

/** `UINT32`, or `unknown(<id>)`. */
export function valueTypeName(t: number): string {
  return isValueType(t) ? GgufValueType[t] : `unknown(${t})`;
}

/** The fixed byte size of a scalar type, or undefined for STRING and ARRAY. */
export function fixedSize(t: GgufValueType): number | undefined {
  return FIXED_SIZES[t];
}

/** The fewest bytes one value of this type can take (a string's length prefix, an array's type and count). */
export function minEncodedSize(t: GgufValueType): number {
  if (t === GgufValueType.STRING) return 8;
  if (t === GgufValueType.ARRAY) return 4 + 8;
  return FIXED_SIZES[t] as number;
}

/** The typed array that holds an array of this item type, or undefined for STRING and ARRAY. */
export function typedArrayFor(t: GgufValueType): TypedArrayCtor | undefined {
  return TYPED_ARRAYS[t];
}

export function isIntegerType(t: GgufValueType): boolean {
  return t <= GgufValueType.INT32 || t === GgufValueType.UINT64 || t === GgufValueType.INT64;
}

export function isNumericType(t: GgufValueType): boolean {
  return isIntegerType(t) || t === GgufValueType.FLOAT32 || t === GgufValueType.FLOAT64;
}

/** True when the host stores numbers little-endian, so typed arrays can be copied from file bytes directly. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
