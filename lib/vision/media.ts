// Images in token sequences. An encoded image is a run of rows (one per image token, of the text model's embedding
// width) that stand in a prompt where token embeddings would. Each encoded image gets its own range of virtual token
// ids, far above any vocabulary: prompts, chat transcripts and KV-cache prefix matching handle an image like any
// other run of tokens (the same image encoded once has the same ids, so a second question about it reuses the cells
// that hold it), and evaluation swaps each virtual id for its row.
import { AglmError } from '../errors.js';

/** The first virtual id; no vocabulary reaches it. */
export const MEDIA_ID_BASE = 0x4000_0000;
const MEDIA_ID_END = 0xffff_fff0;
let nextMediaId = MEDIA_ID_BASE;

/** An image as the text model takes it: `nTokens` rows in the order of its tokens. */
export interface ImageEmbedding {
  /** Virtual token ids firstId .. firstId + nTokens - 1 stand for the rows. */
  readonly firstId: number;
  readonly nTokens: number;
  /** The tokens' grid: nx columns by ny rows, row after row (M-RoPE gives token i the position (i / nx, i % nx)). */
  readonly nx: number;
  readonly ny: number;
  /** Floats per row: the text model's embedding width. */
  readonly width: number;
  /** The rows (64-byte aligned), nTokens * width floats. */
  readonly data: Float32Array;
  /** A hash of the image's preprocessed pixels and of the projector (what the cache knows it by). */
  readonly key: string;
  /** Patches the vision encoder saw, and the preprocessed image size. */
  readonly patches: number;
  readonly imageWidth: number;
  readonly imageHeight: number;
}

/** Reserves `n` virtual ids for a new embedding. */
export function allocateMediaIds(n: number): number {
  if (nextMediaId + n > MEDIA_ID_END) nextMediaId = MEDIA_ID_BASE; // after ~3 billion image tokens: wrap
  const first = nextMediaId;
  nextMediaId += n;
  return first;
}

export function isMediaId(id: number): boolean {
  return id >= MEDIA_ID_BASE;
}

/** Finds the embedding each virtual id belongs to. */
export class MediaIndex {
  readonly #list: ImageEmbedding[];
  constructor(media: readonly ImageEmbedding[] = []) {
    this.#list = [...media].sort((a, b) => a.firstId - b.firstId);
  }
  get size(): number {
    return this.#list.length;
  }
  /** The embedding holding id, or undefined. */
  find(id: number): ImageEmbedding | undefined {
    let lo = 0;
    let hi = this.#list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = this.#list[mid];
      if (id < m.firstId) hi = mid - 1;
      else if (id >= m.firstId + m.nTokens) lo = mid + 1;
      else return m;
    }
    return undefined;
  }
  /** The embedding holding id; MEDIA_NOT_FOUND-style INVALID_ARGUMENT when none does. */
  get(id: number, what = 'token'): ImageEmbedding {
    const m = this.find(id);
    if (!m) throw new AglmError('INVALID_ARGUMENT', `${what} id ${id} is an image token of no image given with this prompt`);
    return m;
  }
}
