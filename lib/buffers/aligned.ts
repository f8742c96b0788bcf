// 64-byte aligned typed arrays owned by JS, for everything that crosses into native code (no external buffers,
// so they work in Electron too). Native code checks the alignment and length of what it receives.
import { nativeBinding } from '../native.js';

export const BUFFER_ALIGNMENT = 64;

type TypedArrayCtor<T> = { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

function allocateAligned<T>(ctor: TypedArrayCtor<T>, length: number): T {
  const bytes = length * ctor.BYTES_PER_ELEMENT;
  // An ArrayBuffer's backing store is allocated outside the JS heap and never moves, so the offset stays valid.
  const buffer = new ArrayBuffer(bytes + BUFFER_ALIGNMENT);
  const offset = nativeBinding().alignmentOffset(buffer);
  return new ctor(buffer, offset, length);
}

export function alignedFloat32(length: number): Float32Array {
  return allocateAligned(Float32Array, length);
}

export function alignedUint32(length: number): Uint32Array {
  return allocateAligned(Uint32Array, length);
}

export function alignedInt32(length: number): Int32Array {
  return allocateAligned(Int32Array, length);
}

/** A growable aligned Uint32Array used as scratch for token ids. */
export class AlignedTokenBuffer {
  private array = alignedUint32(64);
  /** An aligned array holding `tokens` (valid until the next call). */
  fill(tokens: ArrayLike<number>): Uint32Array {
    if (this.array.length < tokens.length) this.array = alignedUint32(Math.max(tokens.length, this.array.length * 2));
    this.array.set(tokens as ArrayLike<number>);
    return this.array;
  }
}
