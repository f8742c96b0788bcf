// Prompts with images: content parts ({ type: 'text', text } and { type: 'image', image }) turned into token ids, each
// image as the projector's begin marker, its rows' virtual ids and the end marker (GLM-4.1V: <|begin_of_image|> ...
// <|end_of_image|>), text as plain text (never special tokens), as llama.cpp's mtmd_tokenize lays a prompt out.
import { AglmError, invalidArgument } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ImageInput } from './image.js';
import type { ImageEmbedding } from './media.js';

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ImagePart {
  type: 'image';
  /** PNG or JPEG bytes, a file path, a base64 `data:` URI, or raw pixels ({ width, height, data }). */
  image: ImageInput;
}

export type ContentPart = TextPart | ImagePart;

/** Token ids with images in them (virtual ids, see media.ts) and the images they refer to. */
export interface MediaPrompt {
  tokens: Uint32Array;
  media: ImageEmbedding[];
}

/** Checks a content-part array (the shape; images are checked when decoded). */
export function checkContentParts(parts: unknown, what = 'content'): asserts parts is ContentPart[] {
  if (!Array.isArray(parts)) throw invalidArgument(what, "an array of { type: 'text', text } and { type: 'image', image } parts", parts);
  parts.forEach((p, i) => {
    const type = (p as { type?: unknown } | null)?.type;
    if (type === 'text') {
      if (typeof (p as TextPart).text !== 'string') throw invalidArgument(`${what}[${i}].text`, 'a string', (p as TextPart).text);
    } else if (type === 'image') {
      const img = (p as ImagePart).image;
      if (img === undefined || img === null) throw invalidArgument(`${what}[${i}].image`, 'image bytes, a path, a data: URI or raw pixels', img);
    } else throw invalidArgument(`${what}[${i}]`, "a { type: 'text', text } or { type: 'image', image } part", p);
  });
}

export function isContentParts(x: unknown): x is ContentPart[] {
  return Array.isArray(x) && x.length > 0 && typeof x[0] === 'object' && x[0] !== null && 'type' in x[0];
}

/** The text the template writes for an image's place (llama.cpp's default media marker). */
export const MEDIA_MARKER = '<__media__>';

/** The tokens around an image (its begin and end markers), as the vocabulary spells them. */
export function imageFrame(tokenizer: Tokenizer): { begin: Uint32Array; end: Uint32Array } {
  const enc = (s: string) => tokenizer.encode(s, { special: true, addBos: false, addEos: false, addSep: false });
  return { begin: enc('<|begin_of_image|>'), end: enc('<|end_of_image|>') };
}

/** An image's tokens: begin marker, one virtual id per row, end marker. */
export function imageTokens(frame: { begin: Uint32Array; end: Uint32Array }, m: ImageEmbedding): Uint32Array {
  const out = new Uint32Array(frame.begin.length + m.nTokens + frame.end.length);
  out.set(frame.begin);
  for (let i = 0; i < m.nTokens; i++) out[frame.begin.length + i] = m.firstId + i;
  out.set(frame.end, frame.begin.length + m.nTokens);
  return out;
}

/**
 * A content-part prompt as tokens: text parts tokenized as plain text (the first with the vocabulary's BOS when
 * `addSpecial`), each image through `encode`.
 */
export async function partsToPrompt(
  parts: ContentPart[],
  tokenizer: Tokenizer,
  encode: ((image: ImageInput) => Promise<ImageEmbedding>) | undefined,
  addSpecial: boolean,
): Promise<MediaPrompt> {
  checkContentParts(parts, 'prompt');
  const pieces: Uint32Array[] = [];
  const media: ImageEmbedding[] = [];
  const frame = imageFrame(tokenizer);
  let first = true;
  for (const part of parts) {
    if (part.type === 'text') {
      if (part.text.length === 0 && !first) continue;
      const specials = first && addSpecial ? {} : { addBos: false, addEos: false, addSep: false };
      pieces.push(tokenizer.encode(part.text, { special: false, ...specials }));
    } else {
      if (!encode) throw new AglmError('NO_PROJECTOR', 'This model was loaded without a vision projector: loadModel(path, { projector: mmprojPath }) reads images');
      if (first && addSpecial && tokenizer.addBos && tokenizer.bos !== undefined) pieces.push(Uint32Array.of(tokenizer.bos));
      const m = await encode(part.image);
      media.push(m);
      pieces.push(imageTokens(frame, m));
    }
    first = false;
  }
  const tokens = new Uint32Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    tokens.set(p, at);
    at += p.length;
  }
  return { tokens, media };
}
