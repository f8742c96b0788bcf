// Decoding one metadata value (scalar, string or array, nested arrays included) from a ByteCursor.
import { AglmError } from '../errors.js';
import type { ByteCursor } from './byte-cursor.js';
import { GgufValueType, type GgufArray, type GgufValue } from './types.js';
import {
  HOST_LITTLE_ENDIAN,
  MAX_ARRAY_DEPTH,
  fixedSize,
  isValueType,
  minEncodedSize,
  typedArrayFor,
} from './value-type-info.js';

/** More items than a JavaScript array can hold; no real file comes anywhere near. */
const MAX_ARRAY_ITEMS = 2 ** 32 - 1;

/** Read a value of `type` (already read from the file at `typeAt`). */
export function readValue(c: ByteCursor, type: number, typeAt: number): GgufValue {
  if (type === GgufValueType.ARRAY) return readArray(c, 1);
  if (type === GgufValueType.STRING) return readString(c, 'string value');
  if (!isValueType(type)) throw unknownType(type, typeAt);
  return readScalar(c, type);
}

export function readString(c: ByteCursor, what: string): string {
  return c.utf8(c.stringLength(what), what);
}

function readScalar(c: ByteCursor, type: GgufValueType): number | bigint | boolean {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8('UINT8 value');
    case GgufValueType.INT8:
      return c.i8('INT8 value');
    case GgufValueType.UINT16:
      return c.u16('UINT16 value');
    case GgufValueType.INT16:
      return c.i16('INT16 value');
    case GgufValueType.UINT32:
      return c.u32('UINT32 value');
    case GgufValueType.INT32:
      return c.i32('INT32 value');
    case GgufValueType.FLOAT32:
      return c.f32('FLOAT32 value');
    case GgufValueType.BOOL:
      return c.u8('BOOL value') !== 0;
    case GgufValueType.UINT64:
      return c.u64('UINT64 value');
    case GgufValueType.INT64:
      return c.i64('INT64 value');
    case GgufValueType.FLOAT64:
      return c.f64('FLOAT64 value');
    default:
      throw new Error(`unreachable: scalar type ${type}`);
  }
}

function readArray(c: ByteCursor, depth: number): GgufArray {
  const typeAt = c.pos;
  if (depth > MAX_ARRAY_DEPTH) {
    throw new AglmError('GGUF_INVALID', `GGUF array at byte ${typeAt} is nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  }
  const itemType = c.u32('array item type');
  if (!isValueType(itemType)) throw unknownType(itemType, typeAt);
  const countAt = c.pos;
  const n = c.count('array item count', minEncodedSize(itemType));
  if (n > MAX_ARRAY_ITEMS) {
    throw new AglmError('GGUF_INVALID', `GGUF array at byte ${countAt} claims ${n} items (at most ${MAX_ARRAY_ITEMS})`);
  }
  if (itemType === GgufValueType.STRING) return { itemType, items: c.strings(n, 'array string') };
  if (itemType === GgufValueType.ARRAY) return { itemType, items: readArrays(c, n, depth + 1) };
  return { itemType, items: readTyped(c, itemType, n) };
}

function readArrays(c: ByteCursor, n: number, depth: number): GgufArray[] {
  const out = new Array<GgufArray>(n);
  for (let i = 0; i < n; i++) out[i] = readArray(c, depth);
  return out;
}

function readTyped(c: ByteCursor, itemType: GgufValueType, n: number): NonNullable<GgufArray['items']> {
  const size = fixedSize(itemType) as number;
  const bytes = c.copy(n * size, `${GgufValueType[itemType]} array items`);
  if (!HOST_LITTLE_ENDIAN) swapEach(bytes, size);
  const Ctor = typedArrayFor(itemType) as Uint8ArrayConstructor;
  return new Ctor(bytes.buffer, 0, n);
}

/** Reverse the bytes of each `size`-byte element, for big-endian hosts. */
function swapEach(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

function unknownType(type: number, at: number): AglmError {
  return new AglmError('GGUF_INVALID', `GGUF metadata value type ${type} at byte ${at} is not a known type (0-12)`);
}
