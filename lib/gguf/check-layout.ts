// Placing tensor data in the file: absolute offsets, and every range inside the file and disjoint from the others.
import { AglmError } from '../errors.js';
import { quote } from './quote.js';
import type { RawTensorInfo } from './read-tensor-infos.js';
import type { GgufTensorInfo } from './types.js';

/** Turn relative offsets into absolute ones and check the ranges: truncation first, then out of bounds, then overlap. */
export function placeTensors(raw: RawTensorInfo[], dataOffset: number, fileSize: number): GgufTensorInfo[] {
  const tensors = raw.map((t) => ({
    name: t.name,
    type: t.type,
    dims: t.dims,
    nElements: t.nElements,
    byteLength: t.byteLength,
    offset: dataOffset + t.relOffset,
  }));
  for (const t of tensors) checkNotCut(t, fileSize);
  for (const t of tensors) checkInside(t, fileSize);
  checkDisjoint(tensors);
  return tensors;
}

/** Data that starts inside the file but ends past its end: the file was cut short. */
function checkNotCut(t: GgufTensorInfo, fileSize: number): void {
  if (t.offset < fileSize && t.offset + t.byteLength > fileSize) {
    throw new AglmError(
      'GGUF_TRUNCATED',
      `GGUF tensor ${quote(t.name)} data at bytes ${t.offset}..${t.offset + t.byteLength} runs past the end of the file (${fileSize} bytes): the file is truncated`,
    );
  }
}

function checkInside(t: GgufTensorInfo, fileSize: number): void {
  const end = t.offset + t.byteLength;
  if (t.offset >= fileSize || end > fileSize || !Number.isSafeInteger(end)) {
    throw new AglmError(
      'GGUF_TENSOR_OUT_OF_BOUNDS',
      `GGUF tensor ${quote(t.name)} data starts at byte ${t.offset}, at or past the end of the file (${fileSize} bytes)`,
    );
  }
}

function checkDisjoint(tensors: GgufTensorInfo[]): void {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new AglmError(
        'GGUF_TENSOR_OVERLAP',
        `GGUF tensors ${quote(prev.name)} (bytes ${prev.offset}..${prev.offset + prev.byteLength}) and ${quote(cur.name)} (from byte ${cur.offset}) overlap`,
      );
    }
  }
}
