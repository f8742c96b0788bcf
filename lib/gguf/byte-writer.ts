// A growable little-endian byte buffer for building GGUF headers.

export class ByteWriter {
  private buf: Buffer;
  private view: DataView;
  length = 0;

  constructor(initialCapacity = 4096) {
    this.buf = Buffer.alloc(initialCapacity);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Make room for `n` more bytes (possibly replacing buf and view: read them after calling); returns where they start. */
  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const grown = Buffer.alloc(Math.max(at + n, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
      this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
    }
    this.length = at + n;
    return at;
  }

  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }

  /** A GGUF string: u64 byte length, then the UTF-8 bytes. */
  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(BigInt(n));
    const at = this.reserve(n);
    this.buf.write(s, at, n, 'utf8');
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    const at = this.reserve(pad);
    this.buf.fill(0, at, this.length);
  }

  /** A copy of the bytes written so far. */
  toBytes(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.length));
  }
}
