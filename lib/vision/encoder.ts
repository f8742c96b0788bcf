// The vision projector of a multimodal model: its own GGUF file (`mmproj-*.gguf`) bound to the same native backend as
// the text model, which turns an image into rows the text model takes in place of token embeddings. Each image is
// evaluated whole in a context sized to its patches (non-causal attention over all of them), on a native worker.
// Encoded images are cached by their preprocessed pixels: asking about the same screenshot again reuses the rows
// (and their virtual token ids, so a chat's KV cache keeps the image's cells too).
import { AglmError } from '../errors.js';
import { alignedFloat32, alignedInt32 } from '../buffers/aligned.js';
import { readGguf } from '../gguf/index.js';
import { Context } from '../model/context.js';
import type { GenerateModel } from '../model/generate.js';
import { fromNative, nativeBinding, type NativeModel } from '../native.js';
import { defaultThreadCount } from '../backends/cpu-count.js';
import { buildGlm4vGraph, readVisionHyperParams, type VisionHyperParams } from './glm4v.js';
import { loadImage, type ImageInput, type ImageLimits, type PreprocessedImage } from './image.js';
import { allocateMediaIds, type ImageEmbedding } from './media.js';

export interface EncodeImageOptions extends ImageLimits {
  signal?: AbortSignal;
  /** Threads for the encoder. Default: the cores this process may use. */
  threads?: number;
}

/** The rows the vision encoder takes for an image: one per patch, merge windows in order; and each patch's place. */
export interface PatchInput {
  count: number;
  /** count rows of 3 * patch^2 floats: channel, row, column. */
  pixels: Float32Array;
  /** 4 per patch: row, column, row, column (the 2-D rope's planes). */
  ropePos: Int32Array;
  /** 2 per patch: where it samples the learned position grid (x, y in grid cells, as ggml's bicubic upscale). */
  gridPos: Float32Array;
}

/** Patches of a preprocessed image in merge-window order (windows row by row; in each, left-right then top-down). */
export function patchInput(img: PreprocessedImage, hp: Pick<VisionHyperParams, 'patchSize' | 'merge' | 'gridSide'>): PatchInput {
  const { px, py, width, height, chw } = img;
  const p = hp.patchSize, m = hp.merge;
  if (px % m !== 0 || py % m !== 0) throw new AglmError('INVALID_IMAGE', `The patch grid ${px} x ${py} is not a multiple of the merge size ${m}`);
  const count = px * py;
  const rowLen = 3 * p * p;
  const pixels = alignedFloat32(count * rowLen);
  const ropePos = alignedInt32(4 * count);
  const gridPos = alignedFloat32(2 * count);
  const plane = width * height;
  const f = Math.fround;
  const sfx = f(px / hp.gridSide), sfy = f(py / hp.gridSide);
  let t = 0;
  for (let wy = 0; wy < py; wy += m) {
    for (let wx = 0; wx < px; wx += m) {
      for (let dy = 0; dy < m; dy++) {
        for (let dx = 0; dx < m; dx++) {
          const x = wx + dx, y = wy + dy;
          const row = t * rowLen;
          for (let c = 0; c < 3; c++) {
            for (let ky = 0; ky < p; ky++) {
              const src = c * plane + (y * p + ky) * width + x * p;
              pixels.set(chw.subarray(src, src + p), row + c * p * p + ky * p);
            }
          }
          ropePos[4 * t] = y;
          ropePos[4 * t + 1] = x;
          ropePos[4 * t + 2] = y;
          ropePos[4 * t + 3] = x;
          gridPos[2 * t] = f(f(f(x + 0.5) / sfx) - 0.5);
          gridPos[2 * t + 1] = f(f(f(y + 0.5) / sfy) - 0.5);
          t++;
        }
      }
    }
  }
  return { count, pixels, ropePos, gridPos };
}

/** `p`, or ABORTED as soon as `signal` fires. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Encoded images kept, by preprocessed pixels; least recently used dropped past this many bytes of rows. */
const CACHE_BYTES = 512 << 20;

const noGenerate = (): never => {
  throw new AglmError('INVALID_ARGUMENT', 'A vision projector does not generate text');
};

export class VisionProjector {
  readonly path: string;
  readonly hparams: VisionHyperParams;
  readonly #native: NativeModel;
  readonly #cache = new Map<string, ImageEmbedding>();
  #cacheBytes = 0;
  readonly #inflight = new Map<string, Promise<ImageEmbedding>>();
  #disposed = false;
  /** Encodes run one at a time (each uses every thread; several at once would only contend). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Images encoded (not found in the cache), for tests and stats. */
  encodes = 0;

  private constructor(path: string, hparams: VisionHyperParams, native: NativeModel) {
    this.path = path;
    this.hparams = hparams;
    this.#native = native;
  }

  /** Loads a projector file for a text model whose embeddings are `textWidth` wide. */
  static async load(path: string, textWidth: number, options: { backend?: string; variant?: string; variantSource?: string; signal?: AbortSignal }): Promise<VisionProjector> {
    const site = new Error();
    const file = await readGguf(path, { signal: options.signal });
    const hp = readVisionHyperParams(file);
    if (hp.outputWidth !== textWidth) {
      throw new AglmError('GGUF_SHAPE_MISMATCH', `The projector's image rows are ${hp.outputWidth} wide but the text model's embeddings are ${textWidth}: they are not a pair`);
    }
    const graph = buildGlm4vGraph(file, hp);
    let native: NativeModel;
    try {
      native = await nativeBinding().Model.load({
        path,
        backend: options.backend,
        variant: options.variant,
        variantSource: options.variantSource,
        threads: defaultThreadCount(),
        graph,
      });
    } catch (e) {
      throw fromNative(e, site);
    }
    return new VisionProjector(path, hp, native);
  }

  /** Decodes, preprocesses and encodes an image (or returns the cached rows of the same pixels). */
  async encode(input: ImageInput, options: EncodeImageOptions = {}): Promise<ImageEmbedding> {
    this.#checkNotDisposed();
    if (options.signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: options.signal.reason });
    // Decoding and preprocessing run on a worker thread; an abort does not wait for them.
    const img = await abortable(loadImage(input, this.hparams, options), options.signal);
    return this.encodePreprocessed(img, options);
  }

  /** @internal Encodes a preprocessed image (cached by its pixels). */
  async encodePreprocessed(img: PreprocessedImage, options: EncodeImageOptions = {}): Promise<ImageEmbedding> {
    this.#checkNotDisposed();
    if (options.signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: options.signal.reason });
    const key = img.hash;
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    let pending = this.#inflight.get(key);
    if (!pending) {
      const run = this.#queue.then(() => {
        if (options.signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: options.signal.reason });
        return this.#run(img, options);
      });
      this.#queue = run.catch(() => {});
      pending = run.finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    try {
      return await pending;
    } catch (e) {
      // Another caller's abort stopped the encode this call shared: encode again for this one.
      if (e instanceof AglmError && e.code === 'ABORTED' && !options.signal?.aborted && !this.#disposed) return this.encodePreprocessed(img, options);
      throw e;
    }
  }

  async #run(img: PreprocessedImage, options: EncodeImageOptions): Promise<ImageEmbedding> {
    const hp = this.hparams;
    const input = patchInput(img, hp);
    const native = this.#native;
    const owner = {
      vocabSize: hp.outputWidth,
      hiddenSize: hp.outputWidth,
      hasLogits: false,
      causal: false,
      contextLength: Math.max(hp.maxPatches, input.count),
      defaultContextSize: input.count,
      model: { vocabSize: 0, contextLength: 0, tokenizer: undefined as never, tokenize: noGenerate, createContext: noGenerate } as GenerateModel,
      nativeModel: () => {
        this.#checkNotDisposed();
        return native;
      },
      contextEnded: () => {},
    };
    const m2 = hp.merge * hp.merge;
    const nTokens = input.count / m2;
    const out = alignedFloat32(nTokens * hp.outputWidth);
    const ctx = new Context(owner, { contextSize: input.count, batchSize: input.count, threads: options.threads });
    try {
      await ctx.defaultSequence.encodePatches(input.count, { pixels: input.pixels, ropePos: input.ropePos, gridPos: input.gridPos, merge: m2 }, out, options.signal);
    } finally {
      ctx.dispose();
    }
    this.encodes++;
    const emb: ImageEmbedding = {
      firstId: allocateMediaIds(nTokens),
      nTokens,
      nx: img.px / hp.merge,
      ny: img.py / hp.merge,
      width: hp.outputWidth,
      data: out,
      key: img.hash,
      patches: input.count,
      imageWidth: img.width,
      imageHeight: img.height,
    };
    this.#remember(emb);
    return emb;
  }

  #remember(e: ImageEmbedding): void {
    this.#cache.set(e.key, e);
    this.#cacheBytes += e.data.byteLength;
    for (const [k, v] of this.#cache) {
      if (this.#cacheBytes <= CACHE_BYTES || this.#cache.size <= 1) break;
      this.#cache.delete(k);
      this.#cacheBytes -= v.data.byteLength;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#cache.clear();
    this.#native.dispose();
  }

  #checkNotDisposed(): void {
    if (this.#disposed) throw new AglmError('DISPOSED', 'The model (and its vision projector) was disposed');
  }
}
