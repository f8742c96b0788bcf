// The shapes of parsed GGUF content: metadata value types, values, entries and tensor infos.

/** Metadata value types as stored in the file (gguf_type). */
export enum GgufValueType {
  UINT8 = 0,
  INT8,
  UINT16,
  INT16,
  UINT32,
  INT32,
  FLOAT32,
  BOOL,
  STRING,
  ARRAY,
  UINT64,
  INT64,
  FLOAT64,
}

/**
 * An array value. Numeric items come as the matching typed array, BOOL items as a Uint8Array of 0/1 bytes,
 * strings as string[], nested arrays as GgufArray[]. Writers also accept a plain array of scalars for any item type.
 */
export interface GgufArray {
  itemType: GgufValueType;
  items:
    | GgufValue[]
    | string[]
    | Uint8Array
    | Int8Array
    | Uint16Array
    | Int16Array
    | Uint32Array
    | Int32Array
    | Float32Array
    | BigUint64Array
    | BigInt64Array
    | Float64Array;
}

/** A metadata value: UINT64/INT64 scalars are bigint, the other numeric types number, BOOL boolean. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufEntry {
  key: string;
  type: GgufValueType;
  value: GgufValue;
}

export interface GgufTensorInfo {
  name: string;
  /** GGML type id (see GgmlType). */
  type: number;
  /** Shape in ne order: dims[0] is the innermost, contiguous dimension. */
  dims: number[];
  nElements: number;
  byteLength: number;
  /** Absolute offset of the tensor's data in the file. */
  offset: number;
}
