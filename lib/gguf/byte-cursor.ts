// A bounds-checked little-endian cursor over a file's prefix, and the GgufNeedMore signal it raises.
import { AglmError } from '../errors.js';

/**
 * Internal signal: the header continues past the bytes given but still inside the file.
 * `needed` is the prefix length (from the start of the file) that the parse needs next.
 */
export class GgufNeedMore extends Error {
  readonly needed: number;
  constructor(needed: number) {
    super(`GGUF header needs the first ${needed} bytes of the file`);
    this.name = 'GgufNeedMore';
    this.needed = needed;
  }
}

const TWO_32 = 2 ** 32;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Slice = (this: Buffer, start: number, end: number) => string;
/** Buffer's internal UTF-8 slice (what toString('utf8', a, b) calls after checking its arguments): much faster per call. */
const utf8Slice: Slice =
  (Buffer.prototype as unknown as { utf8Slice?: Slice }).utf8Slice ??
  function (this: Buffer, start: number, end: number): string {
    return this.toString('utf8', start, end);
  };

export class ByteCursor {
  readonly bytes: Uint8Array;
  readonly fileSize: number;
  pos = 0;
  private readonly view: DataView;
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array, fileSize: number) {
    this.bytes = bytes;
    this.fileSize = fileSize;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left in the file after the cursor. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Make sure `n` bytes from the cursor are in hand: GGUF_TRUNCATED past the file's end, GgufNeedMore past the prefix. */
  need(n: number, what: string): void {
    const end = this.pos + n;
    if (end <= this.bytes.length) return;
    if (end > this.fileSize) {
      throw new AglmError(
        'GGUF_TRUNCATED',
        `GGUF file ends inside ${what} at byte ${this.pos}: it needs ${n} bytes but the file has ${this.fileSize} bytes`,
      );
    }
    throw new GgufNeedMore(end);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 as a number: exact up to 2^53, and above that still larger than any file size. */
  u64Number(what: string): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  /** Read a u64 count of items of at least `minItemBytes` each; GGUF_TRUNCATED if they cannot fit in what remains. */
  count(what: string, minItemBytes: number): number {
    const at = this.pos;
    const n = this.u64Number(what);
    if (n * minItemBytes > this.remaining) {
      throw new AglmError(
        'GGUF_TRUNCATED',
        `GGUF ${what} ${exactU64(this.bytes, at)} at byte ${at} cannot fit in the ${this.remaining} bytes left in the file (${this.fileSize} bytes)`,
      );
    }
    return n;
  }

  /** Read a string's u64 length and check it against the file; returns the length, cursor on the first byte. */
  stringLength(what: string): number {
    const at = this.pos;
    const n = this.u64Number(`${what} length`);
    if (n > this.remaining) {
      throw new AglmError(
        'GGUF_TRUNCATED',
        `GGUF ${what} length ${exactU64(this.bytes, at)} at byte ${at} runs past the end of the file (${this.fileSize} bytes)`,
      );
    }
    return n;
  }

  /** `n` bytes as UTF-8, invalid sequences replaced (values). */
  utf8(n: number, what: string): string {
    this.need(n, what);
    const s = utf8Slice.call(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** `count` strings (u64 length + UTF-8 bytes each), invalid sequences replaced: the hot loop for vocabularies. */
  strings(count: number, what: string): string[] {
    const out = new Array<string>(count);
    // Strings wholly in hand go through the fast loop; the first one that is not gets the full checks and messages.
    for (let i = this.stringsInHand(out); i < count; i++) out[i] = this.utf8(this.stringLength(what), what);
    return out;
  }

  /** Fill `out` from the front while the strings are wholly inside the prefix; returns how many were read. */
  private stringsInHand(out: string[]): number {
    const { view, buf } = this;
    const have = this.bytes.length;
    let pos = this.pos;
    let i = 0;
    for (; i < out.length && pos + 8 <= have; i++) {
      const n = view.getUint32(pos + 4, true) * TWO_32 + view.getUint32(pos, true);
      if (pos + 8 + n > have) break;
      out[i] = utf8Slice.call(buf, pos + 8, pos + 8 + n);
      pos += 8 + n;
    }
    this.pos = pos;
    return i;
  }

  /** `n` bytes as UTF-8, or undefined if they are not valid UTF-8 (keys and names). */
  strictUtf8(n: number, what: string): string | undefined {
    this.need(n, what);
    const at = this.pos;
    this.pos += n;
    try {
      return strictUtf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      return undefined;
    }
  }

  /** A copy of the next `n` bytes in a fresh ArrayBuffer of its own (offset 0, so typed arrays can view it). */
  copy(n: number, what: string): Uint8Array {
    this.need(n, what);
    // Not bytes.slice(): on a Buffer that is a view into the same memory, not a copy.
    const out = new Uint8Array(n);
    out.set(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }
}

/** The exact decimal value of the u64 at `at` (for messages). */
function exactU64(bytes: Uint8Array, at: number): string {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at, true).toString();
}
