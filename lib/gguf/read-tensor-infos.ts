// Reading the tensor info section: names, shapes, types and offsets, each checked on its own.
import { AglmError } from '../errors.js';
import type { ByteCursor } from './byte-cursor.js';
import { ggmlTypeInfo } from './ggml-types.js';
import { quote } from './quote.js';

export const MAX_DIMS = 4;

/** A tensor info as stored: the offset is still relative to the data section (and may be out of range). */
export interface RawTensorInfo {
  name: string;
  type: number;
  dims: number[];
  nElements: number;
  byteLength: number;
  relOffset: number;
}

export function readTensorInfos(c: ByteCursor, count: number, alignment: number): RawTensorInfo[] {
  const infos: RawTensorInfo[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const at = c.pos;
    const info = readTensorInfo(c, alignment);
    if (seen.has(info.name)) throw new AglmError('GGUF_INVALID', `GGUF tensor name ${quote(info.name)} at byte ${at} appears twice`);
    seen.add(info.name);
    infos.push(info);
  }
  return infos;
}

function readTensorInfo(c: ByteCursor, alignment: number): RawTensorInfo {
  const name = readName(c);
  const where = `tensor ${quote(name)}`;
  const dims = readDims(c, where);
  const nElements = countElements(dims, where);
  const typeAt = c.pos;
  const type = c.u32('tensor type');
  const info = ggmlTypeInfo(type);
  if (!info) {
    throw new AglmError('GGUF_UNKNOWN_TENSOR_TYPE', `GGUF ${where} has unknown GGML type id ${type} at byte ${typeAt}`);
  }
  if (dims[0] % info.blockSize !== 0) {
    throw new AglmError(
      'GGUF_INVALID',
      `GGUF ${where} has ne[0] = ${dims[0]}, not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  const offsetAt = c.pos;
  const relOffset = c.u64Number('tensor offset');
  if (relOffset % alignment !== 0) {
    throw new AglmError(
      'GGUF_INVALID',
      `GGUF ${where} data offset ${relOffset} at byte ${offsetAt} is not a multiple of the alignment ${alignment}`,
    );
  }
  const byteLength = (nElements / info.blockSize) * info.typeSize;
  return { name, type, dims, nElements, byteLength, relOffset };
}

function readName(c: ByteCursor): string {
  const at = c.pos;
  const n = c.stringLength('tensor name');
  const name = c.strictUtf8(n, 'tensor name');
  if (name === undefined) throw new AglmError('GGUF_INVALID', `GGUF tensor name at byte ${at} is not valid UTF-8`);
  return name;
}

function readDims(c: ByteCursor, where: string): number[] {
  const at = c.pos;
  const nDims = c.u32('tensor dimension count');
  if (nDims === 0 || nDims > MAX_DIMS) {
    throw new AglmError('GGUF_INVALID', `GGUF ${where} has ${nDims} dimensions at byte ${at} (1 to ${MAX_DIMS} allowed)`);
  }
  c.need(nDims * 8, 'tensor dimensions');
  const dims: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const dimAt = c.pos;
    const v = c.i64('tensor dimension');
    if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new AglmError('GGUF_INVALID', `GGUF ${where} dimension ${d} is ${v} at byte ${dimAt} (must be 1 to 2^53-1)`);
    }
    dims.push(Number(v));
  }
  return dims;
}

function countElements(dims: number[], where: string): number {
  let n = 1;
  for (const d of dims) n *= d;
  if (n > Number.MAX_SAFE_INTEGER) {
    throw new AglmError('GGUF_INVALID', `GGUF ${where} has shape [${dims.join(', ')}]: more than 2^53-1 elements`);
  }
  return n;
}
