// Test helper: builds GGUF bytes field by field with no validation, so tests can write exactly the broken file they want.

/** Little-endian byte encoders for single fields. */
export const enc = {
  u8: (v: number) => Buffer.from([v & 0xff]),
  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return b;
  },
  i32(v: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return b;
  },
  u64(v: bigint | number): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
    return b;
  },
  i64(v: bigint | number): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, BigInt(v)));
    return b;
  },
  /** A GGUF string: u64 length then bytes; `length` overrides the stored length. */
  str(s: string | Uint8Array, length?: bigint | number): Buffer {
    const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
    return Buffer.concat([enc.u64(length ?? bytes.length), bytes]);
  },
};

export interface RawKv {
  key: string | Uint8Array;
  /** Stored key length; defaults to the key's byte length. */
  keyLength?: bigint | number;
  type: number;
  /** The encoded value (after the type field). */
  value: Buffer;
}

export interface RawTensor {
  name: string | Uint8Array;
  /** Stored name length; defaults to the name's byte length. */
  nameLength?: bigint | number;
  dims: (bigint | number)[];
  /** Stored n_dims; defaults to dims.length. */
  nDims?: number;
  type: number;
  offset: bigint | number;
}

export interface RawSpec {
  magic?: Buffer;
  version?: number;
  nTensors?: bigint | number;
  nKv?: bigint | number;
  kvs?: RawKv[];
  tensors?: RawTensor[];
  /** Padding after the tensor infos up to this alignment (default 32). */
  alignment?: number;
  /** Bytes of tensor data after the padding (filled with a pattern). */
  dataBytes?: number;
}

export function rawKv(key: string | Uint8Array, type: number, value: Buffer): RawKv {
  return { key, type, value };
}

function encodeKv(kv: RawKv): Buffer {
  return Buffer.concat([enc.str(kv.key, kv.keyLength), enc.u32(kv.type), kv.value]);
}

function encodeTensor(t: RawTensor): Buffer {
  const dims = t.dims.map((d) => enc.i64(d));
  return Buffer.concat([enc.str(t.name, t.nameLength), enc.u32(t.nDims ?? t.dims.length), ...dims, enc.u32(t.type), enc.u64(t.offset)]);
}

/** The header (magic through tensor infos), unpadded. */
export function rawHeader(spec: RawSpec): Buffer {
  const kvs = spec.kvs ?? [];
  const tensors = spec.tensors ?? [];
  return Buffer.concat([
    spec.magic ?? Buffer.from('GGUF'),
    enc.u32(spec.version ?? 3),
    enc.u64(spec.nTensors ?? tensors.length),
    enc.u64(spec.nKv ?? kvs.length),
    ...kvs.map(encodeKv),
    ...tensors.map(encodeTensor),
  ]);
}

/** A whole file: header, zero padding to the alignment, then `dataBytes` of patterned data. */
export function rawGguf(spec: RawSpec): Buffer {
  const header = rawHeader(spec);
  const alignment = spec.alignment ?? 32;
  const padded = Math.ceil(header.length / alignment) * alignment;
  const data = Buffer.alloc(spec.dataBytes ?? 0);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  return Buffer.concat([header, Buffer.alloc(padded - header.length), data]);
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
