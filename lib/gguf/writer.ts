// Writing GGUF files: header layout and serialization, and streaming tensor data to disk one tensor at a time.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { AglmError, invalidArgument } from '../errors.js';
import { ByteWriter } from './byte-writer.js';
import { ggmlTensorBytes, ggmlTypeInfo } from './ggml-types.js';
import { MAX_DIMS } from './read-tensor-infos.js';
import { GGUF_ALIGNMENT_KEY, GGUF_DEFAULT_ALIGNMENT } from './reader.js';
import { GgufValueType, type GgufEntry } from './types.js';
import { writeEntry } from './write-value.js';

export type GgufTensorData = Uint8Array | (() => Uint8Array | Promise<Uint8Array>);

export interface GgufWriteTensor {
  name: string;
  /** GGML type id (see GgmlType). */
  type: number;
  /** ne order: dims[0] is the contiguous dimension. */
  dims: number[];
  /** The bytes, or a function producing them when the tensor is written (called once, in order). */
  data: GgufTensorData;
}

export interface GgufWriteSpec {
  /** Default 3. */
  version?: 2 | 3;
  /** Default 32 (or general.alignment when the metadata has it); general.alignment is added when not 32. */
  alignment?: number;
  metadata: GgufEntry[];
  tensors: GgufWriteTensor[];
}

interface PlacedTensor {
  spec: GgufWriteTensor;
  byteLength: number;
  /** Offset inside the data section. */
  relOffset: number;
}

interface Layout {
  /** Header plus the padding up to the data section. */
  header: Uint8Array;
  alignment: number;
  tensors: PlacedTensor[];
  fileSize: number;
}

/** The header bytes of the file `spec` describes, padded to where the data section starts (unpadded when there are no tensors). */
export function serializeGgufHeader(spec: GgufWriteSpec): Uint8Array {
  return layoutGguf(spec).header;
}

/** A whole GGUF file in memory (for small files; tensor data must be Uint8Array). */
export function serializeGguf(spec: GgufWriteSpec): Uint8Array {
  const layout = layoutGguf(spec);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header);
  for (const t of layout.tensors) {
    if (!(t.spec.data instanceof Uint8Array)) {
      throw invalidArgument(`data of tensor ${JSON.stringify(t.spec.name)}`, 'a Uint8Array for serializeGguf', t.spec.data);
    }
    out.set(checkedData(t, t.spec.data), layout.header.length + t.relOffset);
  }
  return out;
}

/** Write a GGUF file to `path` (through `path + '.tmp'` and a rename), producing and writing one tensor at a time. */
export async function writeGguf(path: string, spec: GgufWriteSpec): Promise<void> {
  if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'a non-empty string', path);
  const layout = layoutGguf(spec);
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w').catch((e: unknown) => {
    throw writeError(e, tmp);
  });
  try {
    await writeBody(handle, layout, tmp);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await handle.close().catch((e: unknown) => {
    throw writeError(e, tmp);
  });
  await rename(tmp, path).catch((e: unknown) => {
    throw writeError(e, path);
  });
}

async function writeBody(handle: FileHandle, layout: Layout, tmp: string): Promise<void> {
  let pos = 0;
  pos += await writeAll(handle, layout.header, tmp);
  for (const t of layout.tensors) {
    const data = checkedData(t, await produce(t.spec));
    pos += await writeAll(handle, data, tmp);
    pos += await writeZeros(handle, padding(pos, layout.alignment), tmp);
  }
}

async function produce(t: GgufWriteTensor): Promise<Uint8Array> {
  const data = typeof t.data === 'function' ? await t.data() : t.data;
  if (!(data instanceof Uint8Array)) throw invalidArgument(`data of tensor ${JSON.stringify(t.name)}`, 'a Uint8Array', data);
  return data;
}

function checkedData(t: PlacedTensor, data: Uint8Array): Uint8Array {
  if (data.length !== t.byteLength) {
    throw new AglmError(
      'INVALID_ARGUMENT',
      `Tensor ${JSON.stringify(t.spec.name)} has ${data.length} bytes of data but its type and dims take ${t.byteLength}`,
    );
  }
  return data;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, path: string): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done).catch((e: unknown) => {
      throw writeError(e, path);
    });
    done += bytesWritten;
  }
  return done;
}

const ZEROS = new Uint8Array(1 << 16);

async function writeZeros(handle: FileHandle, n: number, path: string): Promise<number> {
  for (let left = n; left > 0; left -= ZEROS.length) await writeAll(handle, ZEROS.subarray(0, Math.min(left, ZEROS.length)), path);
  return n;
}

function writeError(e: unknown, path: string): AglmError {
  const detail = e instanceof Error ? e.message : String(e);
  return new AglmError('IO_ERROR', `Cannot write GGUF file ${path}: ${detail}`, { cause: e });
}

function padding(pos: number, alignment: number): number {
  return (alignment - (pos % alignment)) % alignment;
}

function layoutGguf(spec: GgufWriteSpec): Layout {
  if (typeof spec !== 'object' || spec === null) throw invalidArgument('spec', 'a GgufWriteSpec object', spec);
  const version = spec.version ?? 3;
  if (version !== 2 && version !== 3) throw invalidArgument('version', '2 or 3', version);
  if (!Array.isArray(spec.metadata)) throw invalidArgument('metadata', 'an array of GgufEntry', spec.metadata);
  if (!Array.isArray(spec.tensors)) throw invalidArgument('tensors', 'an array of tensors', spec.tensors);
  const { alignment, metadata } = resolveAlignment(spec);
  const tensors = placeTensors(spec.tensors, alignment);
  const w = new ByteWriter();
  w.bytes(new Uint8Array([0x47, 0x47, 0x55, 0x46]));
  w.u32(version);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.length));
  writeMetadata(w, metadata);
  for (const t of tensors) writeTensorInfo(w, t);
  const last = tensors[tensors.length - 1];
  if (!last) return { header: w.toBytes(), alignment, tensors, fileSize: w.length }; // no data section, no padding (as llama.cpp)
  w.padTo(alignment);
  const dataBytes = last.relOffset + last.byteLength + padding(last.byteLength, alignment);
  return { header: w.toBytes(), alignment, tensors, fileSize: w.length + dataBytes };
}

function writeMetadata(w: ByteWriter, metadata: GgufEntry[]): void {
  const seen = new Set<string>();
  for (const e of metadata) {
    writeEntry(w, e);
    if (seen.has(e.key)) throw new AglmError('INVALID_ARGUMENT', `Metadata key ${JSON.stringify(e.key)} appears twice`);
    seen.add(e.key);
  }
}

/** The alignment to use, and the metadata with general.alignment added when it is not the default. */
function resolveAlignment(spec: GgufWriteSpec): { alignment: number; metadata: GgufEntry[] } {
  const given = spec.metadata.find((e) => e?.key === GGUF_ALIGNMENT_KEY);
  if (spec.alignment !== undefined && !isPowerOfTwo(spec.alignment)) {
    throw invalidArgument('alignment', 'a power of two up to 2^31', spec.alignment);
  }
  if (given) {
    if (given.type !== GgufValueType.UINT32 || !isPowerOfTwo(given.value)) {
      throw invalidArgument(GGUF_ALIGNMENT_KEY, 'a UINT32 power of two', given.value);
    }
    if (spec.alignment !== undefined && spec.alignment !== given.value) {
      throw new AglmError('INVALID_ARGUMENT', `alignment ${spec.alignment} disagrees with ${GGUF_ALIGNMENT_KEY} ${given.value}`);
    }
    return { alignment: given.value as number, metadata: spec.metadata };
  }
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (alignment === GGUF_DEFAULT_ALIGNMENT) return { alignment, metadata: spec.metadata };
  return { alignment, metadata: [...spec.metadata, { key: GGUF_ALIGNMENT_KEY, type: GgufValueType.UINT32, value: alignment }] };
}

function isPowerOfTwo(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2 ** 31 && (v & (v - 1)) === 0;
}

function placeTensors(specs: GgufWriteTensor[], alignment: number): PlacedTensor[] {
  const names = new Set<string>();
  let rel = 0;
  return specs.map((spec) => {
    checkTensorSpec(spec, names);
    const byteLength = ggmlTensorBytes(spec.type, spec.dims);
    const placed = { spec, byteLength, relOffset: rel };
    rel += byteLength + padding(byteLength, alignment);
    return placed;
  });
}

function checkTensorSpec(t: GgufWriteTensor, names: Set<string>): void {
  if (typeof t !== 'object' || t === null) throw invalidArgument('tensor', 'a tensor object', t);
  if (typeof t.name !== 'string') throw invalidArgument('tensor name', 'a string', t.name);
  if (names.has(t.name)) throw new AglmError('INVALID_ARGUMENT', `Tensor name ${JSON.stringify(t.name)} appears twice`);
  names.add(t.name);
  const where = `tensor ${JSON.stringify(t.name)}`;
  const info = ggmlTypeInfo(t.type);
  if (!info) throw invalidArgument(`type of ${where}`, 'a known GGML type id', t.type);
  const dims = t.dims;
  if (!Array.isArray(dims) || dims.length === 0 || dims.length > MAX_DIMS) {
    throw invalidArgument(`dims of ${where}`, `an array of 1 to ${MAX_DIMS} dimensions`, dims);
  }
  if (!dims.every((d) => Number.isSafeInteger(d) && d > 0)) throw invalidArgument(`dims of ${where}`, 'positive integers', dims);
  if (dims.reduce((a, b) => a * b, 1) > Number.MAX_SAFE_INTEGER) {
    throw new AglmError('INVALID_ARGUMENT', `${where} has more than 2^53-1 elements`);
  }
  if (dims[0] % info.blockSize !== 0) {
    throw new AglmError('INVALID_ARGUMENT', `${where} has ne[0] = ${dims[0]}, not a multiple of the ${info.name} block size ${info.blockSize}`);
  }
  if (!(t.data instanceof Uint8Array) && typeof t.data !== 'function') {
    throw invalidArgument(`data of ${where}`, 'a Uint8Array or a function returning one', t.data);
  }
  if (t.data instanceof Uint8Array) checkedData({ spec: t, byteLength: ggmlTensorBytes(t.type, dims), relOffset: 0 }, t.data);
}

function writeTensorInfo(w: ByteWriter, t: PlacedTensor): void {
  w.string(t.spec.name);
  w.u32(t.spec.dims.length);
  for (const d of t.spec.dims) w.i64(BigInt(d));
  w.u32(t.spec.type);
  w.u64(BigInt(t.relOffset));
}
