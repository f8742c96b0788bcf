// Parsing a GGUF header (parseGguf, sync, from the file's prefix) and reading one from disk (readGguf).
import { open, type FileHandle } from 'node:fs/promises';
import { AglmError, invalidArgument } from '../errors.js';
import { ByteCursor, GgufNeedMore } from './byte-cursor.js';
import { placeTensors } from './check-layout.js';
import { GgufMetadata } from './metadata.js';
import { readEntries } from './read-metadata.js';
import { readTensorInfos } from './read-tensor-infos.js';
import { GgufValueType, type GgufTensorInfo } from './types.js';

export { GgufNeedMore } from './byte-cursor.js';

export interface GgufFile {
  version: 2 | 3;
  fileSize: number;
  alignment: number;
  /** Where the tensor info section ends (before the padding to the data section). */
  headerBytes: number;
  /** Where the data section starts: headerBytes rounded up to the alignment. */
  dataOffset: number;
  metadata: GgufMetadata;
  /** In file order; offsets are absolute. */
  tensors: GgufTensorInfo[];
  tensor(name: string): GgufTensorInfo | undefined;
}

export interface ReadGgufOptions {
  signal?: AbortSignal;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_ALIGNMENT_KEY = 'general.alignment';

/** The smallest possible tensor info (name length, n_dims, one dim, type, offset) and key/value pair. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
const MIN_KV_BYTES = 8 + 1 + 4 + 1;

/** Read 1 MiB first (most headers fit); if that is short, jump to 16 MiB (nearly all the rest fit), then double. */
const INITIAL_PREFIX_BYTES = 1 << 20;
const SECOND_PREFIX_BYTES = 16 << 20;
/** No real header comes near this; a file that claims one is refused rather than read into memory. */
const MAX_HEADER_BYTES = 256 << 20;

/**
 * Parse a GGUF header. `bytes` is the start of the file (or all of it), `fileSize` the whole file's size.
 * Throws GgufNeedMore when the header continues past `bytes` but inside the file.
 */
export function parseGguf(bytes: Uint8Array, fileSize: number = bytes.length): GgufFile {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('bytes', 'a Uint8Array', bytes);
  if (!Number.isSafeInteger(fileSize) || fileSize < bytes.length) {
    throw invalidArgument('fileSize', `an integer of at least bytes.length (${bytes.length})`, fileSize);
  }
  const c = new ByteCursor(bytes, fileSize);
  readMagic(c);
  const version = readVersion(c);
  const [nTensors, nKv] = readCounts(c);
  const metadata = new GgufMetadata(readEntries(c, nKv));
  const alignment = alignmentOf(metadata);
  const raw = readTensorInfos(c, nTensors, alignment);
  const headerBytes = c.pos;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;
  const tensors = placeTensors(raw, dataOffset, fileSize);
  return makeFile({ version, fileSize, alignment, headerBytes, dataOffset, metadata, tensors });
}

function readMagic(c: ByteCursor): void {
  const have = c.bytes.subarray(0, 4);
  if (have.some((b, i) => b !== 'GGUF'.charCodeAt(i))) {
    const hex = Array.from(have, (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new AglmError('GGUF_BAD_MAGIC', `Not a GGUF file: it starts with bytes ${hex}, not "GGUF" (47 47 55 46)`);
  }
  c.u32('the magic number');
}

function readVersion(c: ByteCursor): 2 | 3 {
  const v = c.u32('the version');
  if (v === 2 || v === 3) return v;
  const swapped = v === 0x02000000 || v === 0x03000000;
  const why = swapped ? ' (a big-endian file; only little-endian GGUF is supported)' : ' (versions 2 and 3 are supported)';
  throw new AglmError('GGUF_UNSUPPORTED_VERSION', `GGUF version ${v} is not supported${why}`);
}

function readCounts(c: ByteCursor): [number, number] {
  const nTensors = c.count('tensor count', MIN_TENSOR_INFO_BYTES);
  const nKv = c.count('metadata key/value count', MIN_KV_BYTES);
  if (nTensors * MIN_TENSOR_INFO_BYTES + nKv * MIN_KV_BYTES > c.remaining) {
    throw new AglmError(
      'GGUF_TRUNCATED',
      `GGUF header claims ${nTensors} tensors and ${nKv} metadata pairs, more than fit in the file (${c.fileSize} bytes)`,
    );
  }
  return [nTensors, nKv];
}

function alignmentOf(metadata: GgufMetadata): number {
  const e = metadata.getEntry(GGUF_ALIGNMENT_KEY);
  if (!e) return GGUF_DEFAULT_ALIGNMENT;
  const v = e.value;
  if (e.type !== GgufValueType.UINT32 || typeof v !== 'number' || v === 0 || (v & (v - 1)) !== 0) {
    const shown = typeof v === 'object' ? 'an array' : String(v);
    throw new AglmError(
      'GGUF_INVALID',
      `GGUF ${GGUF_ALIGNMENT_KEY} is ${shown} of type ${GgufValueType[e.type] ?? e.type}, not a UINT32 power of two`,
    );
  }
  return v;
}

function makeFile(parts: Omit<GgufFile, 'tensor'>): GgufFile {
  let byName: Map<string, GgufTensorInfo> | undefined;
  return {
    ...parts,
    tensor(name: string): GgufTensorInfo | undefined {
      byName ??= new Map(parts.tensors.map((t) => [t.name, t]));
      return byName.get(name);
    },
  };
}

/** Read and parse a GGUF file's header from disk, reading only as much of the file as the header needs. */
export async function readGguf(path: string, options: ReadGgufOptions = {}): Promise<GgufFile> {
  if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'a non-empty string', path);
  const { signal } = options;
  throwIfAborted(signal, path);
  const handle = await open(path, 'r').catch((e: unknown) => {
    throw fsError(e, path);
  });
  try {
    return await readHeader(handle, path, signal);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function readHeader(handle: FileHandle, path: string, signal: AbortSignal | undefined): Promise<GgufFile> {
  const stat = await handle.stat().catch((e: unknown) => {
    throw fsError(e, path);
  });
  if (!stat.isFile()) throw new AglmError('IO_ERROR', `Cannot read ${path}: not a regular file`);
  const size = stat.size;
  let prefix = await readInto(handle, new Uint8Array(Math.min(size, INITIAL_PREFIX_BYTES)), 0, path);
  for (;;) {
    throwIfAborted(signal, path);
    try {
      return parseGguf(prefix, size);
    } catch (e) {
      if (!(e instanceof GgufNeedMore)) throw e;
      const want = Math.min(size, Math.max(e.needed, SECOND_PREFIX_BYTES, prefix.length * 2));
      if (want > MAX_HEADER_BYTES) {
        throw new AglmError('GGUF_INVALID', `GGUF header of ${path} is larger than ${MAX_HEADER_BYTES >> 20} MiB`);
      }
      const grown = new Uint8Array(want);
      grown.set(prefix);
      prefix = await readInto(handle, grown, prefix.length, path);
    }
  }
}

/** Fill `buf` from file position `from` onwards (the bytes before it are already there). */
async function readInto(handle: FileHandle, buf: Uint8Array, from: number, path: string): Promise<Uint8Array> {
  let pos = from;
  while (pos < buf.length) {
    const { bytesRead } = await handle.read(buf, pos, buf.length - pos, pos).catch((e: unknown) => {
      throw fsError(e, path);
    });
    if (bytesRead === 0) throw new AglmError('IO_ERROR', `${path} became shorter while it was being read`);
    pos += bytesRead;
  }
  return buf;
}

function fsError(e: unknown, path: string): AglmError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const detail = e instanceof Error ? e.message : String(e);
  if (code === 'ENOENT') return new AglmError('FILE_NOT_FOUND', `GGUF file not found: ${path}`, { cause: e });
  return new AglmError('IO_ERROR', `Cannot read GGUF file ${path}: ${detail}`, { cause: e });
}

function throwIfAborted(signal: AbortSignal | undefined, path: string): void {
  if (signal?.aborted) throw new AglmError('ABORTED', `Reading ${path} was aborted`, { cause: signal.reason });
}
