// Reading the metadata key/value section: keys checked (non-empty, bounded, UTF-8, unique), values decoded in order.
import { AglmError } from '../errors.js';
import type { ByteCursor } from './byte-cursor.js';
import { readValue } from './read-value.js';
import type { GgufEntry } from './types.js';
import { quote } from './quote.js';
import { MAX_KEY_BYTES } from './value-type-info.js';

export function readEntries(c: ByteCursor, count: number): GgufEntry[] {
  const entries: GgufEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const keyAt = c.pos;
    const key = readKey(c);
    if (seen.has(key)) throw new AglmError('GGUF_INVALID', `GGUF metadata key ${quote(key)} at byte ${keyAt} appears twice`);
    seen.add(key);
    entries.push(readEntryValue(c, key));
  }
  return entries;
}

function readKey(c: ByteCursor): string {
  const at = c.pos;
  const n = c.stringLength('metadata key');
  if (n === 0) throw new AglmError('GGUF_INVALID', `GGUF metadata key at byte ${at} is empty`);
  if (n > MAX_KEY_BYTES) {
    throw new AglmError('GGUF_INVALID', `GGUF metadata key at byte ${at} is ${n} bytes long (at most ${MAX_KEY_BYTES})`);
  }
  const key = c.strictUtf8(n, 'metadata key');
  if (key === undefined) throw new AglmError('GGUF_INVALID', `GGUF metadata key at byte ${at} is not valid UTF-8`);
  return key;
}

function readEntryValue(c: ByteCursor, key: string): GgufEntry {
  const typeAt = c.pos;
  const type = c.u32('metadata value type');
  try {
    return { key, type, value: readValue(c, type, typeAt) };
  } catch (e) {
    if (!(e instanceof AglmError)) throw e;
    throw new AglmError(e.code, `${e.message} (in the value of metadata key ${quote(key)})`, { cause: e });
  }
}
