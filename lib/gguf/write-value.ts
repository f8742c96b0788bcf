// Encoding metadata entries: each value checked against its declared type, then written as GGUF bytes.
import { AglmError, invalidArgument } from '../errors.js';
import type { ByteWriter } from './byte-writer.js';
import { GgufValueType, type GgufArray, type GgufEntry } from './types.js';
import { HOST_LITTLE_ENDIAN, MAX_ARRAY_DEPTH, MAX_KEY_BYTES, isValueType, typedArrayFor } from './value-type-info.js';

const INT_RANGES: Partial<Record<GgufValueType, readonly [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};
const BIG_RANGES: Partial<Record<GgufValueType, readonly [bigint, bigint]>> = {
  [GgufValueType.UINT64]: [0n, 2n ** 64n - 1n],
  [GgufValueType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
};

export function writeEntry(w: ByteWriter, entry: GgufEntry): void {
  if (typeof entry !== 'object' || entry === null) throw invalidArgument('metadata entry', 'a GgufEntry {key, type, value}', entry);
  const { key, type, value } = entry;
  if (typeof key !== 'string' || key === '' || Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw invalidArgument('metadata key', `a non-empty string of at most ${MAX_KEY_BYTES} UTF-8 bytes`, key);
  }
  if (!isValueType(type)) throw invalidArgument(`the type of metadata ${JSON.stringify(key)}`, 'a GgufValueType', type);
  w.string(key);
  w.u32(type);
  writeValue(w, type, value, `metadata ${JSON.stringify(key)}`, 0);
}

function writeValue(w: ByteWriter, type: GgufValueType, value: unknown, where: string, depth: number): void {
  if (type === GgufValueType.ARRAY) return writeArray(w, value, where, depth + 1);
  writeScalar(w, type, value, where);
}

function writeScalar(w: ByteWriter, type: GgufValueType, v: unknown, where: string): void {
  const name = GgufValueType[type];
  switch (type) {
    case GgufValueType.STRING:
      if (typeof v !== 'string') throw invalidArgument(where, 'a string', v);
      return w.string(v);
    case GgufValueType.BOOL:
      if (typeof v !== 'boolean') throw invalidArgument(where, 'a boolean', v);
      return w.u8(v ? 1 : 0);
    case GgufValueType.FLOAT32:
      if (typeof v !== 'number') throw invalidArgument(where, 'a number for FLOAT32', v);
      return w.f32(v);
    case GgufValueType.FLOAT64:
      if (typeof v !== 'number') throw invalidArgument(where, 'a number for FLOAT64', v);
      return w.f64(v);
    case GgufValueType.UINT64:
      return w.u64(checkBig(type, v, where));
    case GgufValueType.INT64:
      return w.i64(checkBig(type, v, where));
    default:
      return writeSmallInt(w, type, checkInt(type, v, where, name));
  }
}

function writeSmallInt(w: ByteWriter, type: GgufValueType, v: number): void {
  if (type === GgufValueType.UINT8) w.u8(v);
  else if (type === GgufValueType.INT8) w.i8(v);
  else if (type === GgufValueType.UINT16) w.u16(v);
  else if (type === GgufValueType.INT16) w.i16(v);
  else if (type === GgufValueType.UINT32) w.u32(v);
  else w.i32(v);
}

function checkInt(type: GgufValueType, v: unknown, where: string, name: string): number {
  const [lo, hi] = INT_RANGES[type] as readonly [number, number];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw invalidArgument(where, `an integer from ${lo} to ${hi} for ${name}`, v);
  }
  return v;
}

function checkBig(type: GgufValueType, v: unknown, where: string): bigint {
  const [lo, hi] = BIG_RANGES[type] as readonly [bigint, bigint];
  const big = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v as number) : undefined;
  if (big === undefined || big < lo || big > hi) {
    throw invalidArgument(where, `a bigint (or safe integer) from ${lo} to ${hi} for ${GgufValueType[type]}`, v);
  }
  return big;
}

function writeArray(w: ByteWriter, value: unknown, where: string, depth: number): void {
  if (depth > MAX_ARRAY_DEPTH) {
    throw new AglmError('INVALID_ARGUMENT', `${where} nests arrays deeper than ${MAX_ARRAY_DEPTH} levels`);
  }
  const arr = value as GgufArray | null;
  if (typeof arr !== 'object' || arr === null || !isValueType(arr.itemType) || !isArrayLike(arr.items)) {
    throw invalidArgument(where, 'a GgufArray {itemType, items}', value);
  }
  w.u32(arr.itemType);
  w.u64(BigInt(arr.items.length));
  if (ArrayBuffer.isView(arr.items)) return writeTyped(w, arr.itemType, arr.items, where);
  const items = arr.items as unknown[];
  for (let i = 0; i < items.length; i++) writeItem(w, arr.itemType, items[i], where, depth);
}

/** A plain-array item: BOOL items may also be given as 0 or 1. */
function writeItem(w: ByteWriter, itemType: GgufValueType, v: unknown, where: string, depth: number): void {
  if (itemType === GgufValueType.BOOL && (v === 0 || v === 1)) return w.u8(v);
  if (itemType === GgufValueType.ARRAY) return writeArray(w, v, `${where} item`, depth + 1);
  writeScalar(w, itemType, v, `${where} item`);
}

function writeTyped(w: ByteWriter, itemType: GgufValueType, items: ArrayBufferView, where: string): void {
  const Ctor = typedArrayFor(itemType);
  if (!Ctor || !(items instanceof Ctor)) {
    throw invalidArgument(`${where} items`, `a ${Ctor?.name ?? 'plain array'} for ${GgufValueType[itemType]} items`, items);
  }
  const bytes = new Uint8Array(items.buffer, items.byteOffset, items.byteLength);
  if (HOST_LITTLE_ENDIAN) return w.bytes(bytes);
  const size = Ctor.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += size) w.bytes(bytes.slice(i, i + size).reverse());
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}
