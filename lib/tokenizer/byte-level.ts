// GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable character, so byte-level BPE vocabularies
// hold only printable text. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68
// bytes (controls, space, 0x7F-0xA0, soft hyphen) map in byte order to U+0100, U+0101, ...

/** BYTE_CHARS[b] is the character that stands for byte b. */
export const BYTE_CHARS: readonly string[] = buildByteChars();

/** The byte a byte-level character stands for (by UTF-16 code unit), or -1. All 256 characters are below U+0144. */
const CHAR_BYTES: Int16Array = buildCharBytes();

function isPrintableLatin1(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

function buildByteChars(): string[] {
  const chars: string[] = new Array(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCharCode(isPrintableLatin1(b) ? b : next++);
  return chars;
}

function buildCharBytes(): Int16Array {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_CHARS.forEach((ch, b) => (table[ch.charCodeAt(0)] = b));
  return table;
}

/** The byte a byte-level character (one UTF-16 unit) stands for, or -1 when it is not one of the 256. */
export function byteOfChar(code: number): number {
  return code < CHAR_BYTES.length ? CHAR_BYTES[code] : -1;
}

const utf8 = new TextEncoder();

/** The byte-level form of text: its UTF-8 bytes, each shown as its byte-level character. */
export function toByteLevel(text: string): string {
  const bytes = utf8.encode(text);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_CHARS[bytes[i]];
  return s;
}

/**
 * The bytes a byte-level piece stands for. A character outside the byte-level alphabet (a piece that was never
 * byte-encoded) contributes its own UTF-8 bytes.
 */
export function byteLevelPieceBytes(piece: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < piece.length; i++) {
    const b = byteOfChar(piece.charCodeAt(i));
    if (b >= 0) {
      out.push(b);
      continue;
    }
    const cp = piece.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    for (const x of utf8.encode(ch)) out.push(x);
    i += ch.length - 1;
  }
  return Uint8Array.from(out);
}
