// Images in: PNG and JPEG (pngjs, jpeg-js: plain JavaScript, loaded on first use), raw RGB/RGBA pixels, file paths and
// base64 `data:` URIs; then the preprocessing of a dynamic-resolution vision model as llama.cpp's mtmd does it (which
// follows the Hugging Face processors): the size rounded to multiples of patch x merge pixels within a pixel budget
// ("smart resize", aspect kept), a Pillow-compatible bicubic resize (a = -0.5, 22-bit fixed point, horizontal pass
// then vertical, 8-bit between and after) into the middle of a black canvas of that size, then (v / 255 - mean) / std
// per channel in float32.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { AglmError, invalidArgument } from '../errors.js';

/** Raw pixels: rows top to bottom, channels interleaved (3: RGB, 4: RGBA; alpha is dropped, as llama.cpp does). */
export interface RawImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
  channels?: 3 | 4;
}

/** An image as the API takes it: encoded bytes (PNG/JPEG), a file path, a `data:` URI (base64), or raw pixels. */
export type ImageInput = Uint8Array | string | RawImage;

/** Decoded 8-bit RGB pixels. */
export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes. */
  rgb: Uint8Array;
}

/** Limits on what an image may be before decoding and resizing (the server sets its own). */
export interface ImageLimits {
  /** Most encoded bytes. Default 32 MiB. */
  maxBytes?: number;
  /** Most decoded pixels (width * height). Default 50 megapixels. */
  maxPixels?: number;
}

const DEFAULT_MAX_BYTES = 32 << 20;
const DEFAULT_MAX_PIXELS = 50_000_000;

const require = createRequire(import.meta.url);
let png: typeof import('pngjs') | undefined;
let jpeg: typeof import('jpeg-js') | undefined;

function badImage(message: string, cause?: unknown): AglmError {
  return new AglmError('INVALID_IMAGE', message, cause === undefined ? undefined : { cause });
}

/** The bytes of a base64 `data:` URI (image/png, image/jpeg, or any image/* whose bytes are PNG or JPEG). */
export function dataUriBytes(uri: string, maxBytes = DEFAULT_MAX_BYTES): Uint8Array {
  const m = /^data:([^;,]*)((?:;[^;,]*)*?);base64,/i.exec(uri.slice(0, 256));
  if (!m) throw badImage('An image data URI must be base64: data:image/png;base64,... or data:image/jpeg;base64,...');
  if (m[1] && !/^image\//i.test(m[1])) throw badImage(`A data URI of type '${m[1]}' is not an image`);
  const body = uri.slice(m[0].length);
  if (Math.floor((body.length * 3) / 4) > maxBytes) throw badImage(`The image is larger than ${maxBytes} bytes`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body.replace(/\s+/g, ''))) throw badImage('The data URI is not valid base64');
  return new Uint8Array(Buffer.from(body, 'base64'));
}

/** Reads an ImageInput to encoded bytes or raw pixels (paths from disk, data URIs decoded). */
async function bytesOf(input: ImageInput, limits: ImageLimits): Promise<Uint8Array | RawImage> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (typeof input === 'string') {
    if (input.startsWith('data:')) return dataUriBytes(input, maxBytes);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw badImage('Images are read from files, bytes or data: URIs; a URL is not fetched');
    let bytes: Buffer;
    try {
      bytes = await readFile(input);
    } catch (e) {
      throw new AglmError('FILE_NOT_FOUND', `Cannot read the image file '${input}': ${(e as Error).message}`, { cause: e });
    }
    if (bytes.length > maxBytes) throw badImage(`The image file is larger than ${maxBytes} bytes`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  if (input instanceof Uint8Array) {
    if (input.length > maxBytes) throw badImage(`The image is larger than ${maxBytes} bytes`);
    return input;
  }
  if (input && typeof input === 'object' && 'data' in input && 'width' in input) return input;
  throw invalidArgument('image', 'PNG or JPEG bytes (Uint8Array), a file path, a data: URI, or { width, height, data }', input);
}

/** Decodes an image to 8-bit RGB (PNG: 8/16-bit, gray, palette, alpha dropped; JPEG: baseline and progressive). */
export async function decodeImage(input: ImageInput, limits: ImageLimits = {}): Promise<RgbImage> {
  const src = await bytesOf(input, limits);
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(src instanceof Uint8Array)) return rawToRgb(src, maxPixels);
  const b = src;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return decodePng(b, maxPixels);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return decodeJpeg(b, maxPixels);
  throw badImage('The image is neither PNG nor JPEG');
}

function checkSize(width: number, height: number, maxPixels: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw badImage(`The image has no pixels (${width} x ${height})`);
  if (width * height > maxPixels) throw badImage(`The image has ${width} x ${height} pixels, more than the limit of ${maxPixels}`);
}

function rawToRgb(img: RawImage, maxPixels: number): RgbImage {
  const { width, height, data } = img;
  checkSize(width, height, maxPixels);
  const channels = img.channels ?? (data.length === width * height * 4 ? 4 : 3);
  if ((channels !== 3 && channels !== 4) || data.length !== width * height * channels) {
    throw invalidArgument('image.data', `width * height * channels (${width} x ${height} x ${channels}) bytes`, data.length);
  }
  const rgb = new Uint8Array(width * height * 3);
  if (channels === 3) rgb.set(data);
  else for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) (rgb[i] = data[j]), (rgb[i + 1] = data[j + 1]), (rgb[i + 2] = data[j + 2]);
  return { width, height, rgb };
}

function peekPngSize(b: Uint8Array): [number, number] {
  // The IHDR chunk comes first: width and height, big-endian, at bytes 16..23.
  if (b.length < 24) throw badImage('The PNG file is truncated');
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  return [v.getUint32(16), v.getUint32(20)];
}

function decodePng(b: Uint8Array, maxPixels: number): RgbImage {
  const [w, h] = peekPngSize(b);
  checkSize(w, h, maxPixels);
  png ??= require('pngjs') as typeof import('pngjs');
  let out: { width: number; height: number; data: Buffer };
  try {
    out = png.PNG.sync.read(Buffer.from(b.buffer, b.byteOffset, b.length));
  } catch (e) {
    throw badImage(`The PNG image does not decode: ${(e as Error).message}`, e);
  }
  return rawToRgb({ width: out.width, height: out.height, data: out.data, channels: 4 }, maxPixels);
}

function decodeJpeg(b: Uint8Array, maxPixels: number): RgbImage {
  jpeg ??= require('jpeg-js') as typeof import('jpeg-js');
  let out: { width: number; height: number; data: Uint8Array };
  try {
    out = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: 2048 });
  } catch (e) {
    throw badImage(`The JPEG image does not decode: ${(e as Error).message}`, e);
  }
  checkSize(out.width, out.height, maxPixels);
  return rawToRgb({ width: out.width, height: out.height, data: out.data, channels: 3 }, maxPixels);
}

const f = Math.fround;

/**
 * The resized image size: each side rounded to a multiple of `align` (at least `align`), then scaled down to fit
 * `maxPixels` or up to reach `minPixels`, keeping the aspect ratio (llama.cpp's calc_size_preserved_ratio, in float32
 * as it computes).
 */
export function smartResize(width: number, height: number, align: number, minPixels: number, maxPixels: number): { width: number; height: number } {
  const roundTo = (x: number) => Math.round(f(x / align)) * align; // C++ round: half away from zero (x > 0 here)
  const ceilTo = (x: number) => Math.ceil(f(x / align)) * align;
  const floorTo = (x: number) => Math.floor(f(x / align)) * align;
  let w = Math.max(align, roundTo(width));
  let h = Math.max(align, roundTo(height));
  if (maxPixels > 0 && w * h > maxPixels) {
    const beta = f(Math.sqrt(f(f(height * width) / maxPixels)));
    h = Math.max(align, floorTo(f(height / beta)));
    w = Math.max(align, floorTo(f(width / beta)));
  } else if (minPixels > 0 && w * h < minPixels) {
    const beta = f(Math.sqrt(f(minPixels / f(height * width))));
    h = ceilTo(f(height * beta));
    w = ceilTo(f(width * beta));
  }
  return { width: w, height: h };
}

const PRECISION_BITS = 22;

/** Pillow's bicubic filter (a = -0.5). */
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per output pixel: the first input pixel, how many, and their fixed-point weights (Pillow's precompute_coeffs). */
function coefficients(inSize: number, outSize: number): { ksize: number; bounds: Int32Array; weights: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  const one = 2 ** PRECISION_BITS;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    pre.fill(0);
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      pre[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) pre[x] /= ww;
    for (let x = 0; x < ksize; x++) weights[xx * ksize + x] = Math.trunc(pre[x] * one + (pre[x] < 0 ? -0.5 : 0.5));
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Pillow-compatible bicubic resize of 8-bit RGB (horizontal pass, then vertical; each pass only if the size changes). */
export function resizeBicubic(img: RgbImage, width: number, height: number): RgbImage {
  let { rgb, width: w, height: h } = img;
  if (width !== w) {
    const { ksize, bounds, weights } = coefficients(w, width);
    const out = new Uint8Array(width * h * 3);
    const half = 1 << (PRECISION_BITS - 1);
    for (let y = 0; y < h; y++) {
      const row = y * w * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2], cnt = bounds[xx * 2 + 1], k = xx * ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0; x < cnt; x++) {
          const p = row + (xmin + x) * 3, kw = weights[k + x];
          s0 += rgb[p] * kw;
          s1 += rgb[p + 1] * kw;
          s2 += rgb[p + 2] * kw;
        }
        const o = (y * width + xx) * 3;
        out[o] = clip8(s0 >> PRECISION_BITS);
        out[o + 1] = clip8(s1 >> PRECISION_BITS);
        out[o + 2] = clip8(s2 >> PRECISION_BITS);
      }
    }
    rgb = out;
    w = width;
  }
  if (height !== h) {
    const { ksize, bounds, weights } = coefficients(h, height);
    const rowElems = w * 3;
    const out = new Uint8Array(rowElems * height);
    const acc = new Int32Array(rowElems);
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2], cnt = bounds[yy * 2 + 1], k = yy * ksize;
      acc.fill(1 << (PRECISION_BITS - 1));
      for (let y = 0; y < cnt; y++) {
        const src = (ymin + y) * rowElems, kw = weights[k + y];
        for (let i = 0; i < rowElems; i++) acc[i] += rgb[src + i] * kw;
      }
      const o = yy * rowElems;
      for (let i = 0; i < rowElems; i++) out[o + i] = clip8(acc[i] >> PRECISION_BITS);
    }
    rgb = out;
    h = height;
  }
  return { width: w, height: h, rgb };
}

/**
 * Fits the image into width x height: resized to the largest size with its aspect ratio that fits (sides rounded up,
 * as llama.cpp's PAD_CEIL), centered on black.
 */
export function resizePadded(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return { width, height, rgb: img.rgb.slice() };
  const scale = Math.min(f(width / img.width), f(height / img.height));
  const nw = Math.min(Math.ceil(f(img.width * scale)), width);
  const nh = Math.min(Math.ceil(f(img.height * scale)), height);
  const resized = resizeBicubic(img, nw, nh);
  const out = new Uint8Array(width * height * 3);
  const ox = Math.trunc((width - nw) / 2), oy = Math.trunc((height - nh) / 2);
  for (let y = 0; y < nh; y++) out.set(resized.rgb.subarray(y * nw * 3, (y + 1) * nw * 3), ((y + oy) * width + ox) * 3);
  return { width, height, rgb: out };
}

/** What the vision encoder's preprocessing needs from its model. */
export interface PreprocessParams {
  patchSize: number;
  merge: number;
  minPixels: number;
  maxPixels: number;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
}

/** A preprocessed image: normalised float pixels, channel-major (3 x height x width), and its patch grid. */
export interface PreprocessedImage {
  width: number;
  height: number;
  /** Patches across and down (width / patchSize, height / patchSize). */
  px: number;
  py: number;
  /** Planes R, G, B of height x width floats each. */
  chw: Float32Array;
  /** A hash of the pixels (the cache key of the image's embedding). */
  hash: string;
}

export function preprocessImage(img: RgbImage, p: PreprocessParams): PreprocessedImage {
  const align = p.patchSize * p.merge;
  const size = smartResize(img.width, img.height, align, p.minPixels, p.maxPixels);
  const resized = resizePadded(img, size.width, size.height);
  const n = size.width * size.height;
  const chw = new Float32Array(3 * n);
  const mean = p.imageMean.map(f), std = p.imageStd.map(f);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) chw[c * n + i] = f(f(f(resized.rgb[i * 3 + c] / 255) - mean[c]) / std[c]);
  }
  const hash = createHash('sha256').update(resized.rgb).update(`${size.width}x${size.height}`).digest('hex');
  return { width: size.width, height: size.height, px: size.width / p.patchSize, py: size.height / p.patchSize, chw, hash };
}

// ---- off the event loop ----------------------------------------------------------------------------------------

interface WorkerReply {
  id: number;
  ok: boolean;
  image?: PreprocessedImage;
  code?: string;
  message?: string;
}

let worker: import('node:worker_threads').Worker | undefined;
let workerFailed = false;
let nextJob = 0;
const jobs = new Map<number, { resolve: (img: PreprocessedImage) => void; reject: (e: Error) => void }>();

/** The worker's file: beside this one (dist/vision/*.js, or lib/vision/*.ts run through tsx), or in dist/vision/. */
function workerFile(): string | undefined {
  const { existsSync } = require('node:fs') as typeof import('node:fs');
  const { fileURLToPath } = require('node:url') as typeof import('node:url');
  const { join } = require('node:path') as typeof import('node:path');
  for (const rel of ['./image-worker.js', './image-worker.ts']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  // The CommonJS bundle (dist/index.cjs): the ESM build's worker.
  const p = join(fileURLToPath(new URL('.', import.meta.url)), 'vision', 'image-worker.js');
  return existsSync(p) ? p : undefined;
}

function startWorker(): import('node:worker_threads').Worker | undefined {
  if (worker || workerFailed) return worker;
  const file = workerFile();
  if (!file) {
    workerFailed = true;
    return undefined;
  }
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  try {
    if (file.endsWith('.ts')) {
      // From source (lib/ run through tsx): the worker registers tsx's loader before importing its file.
      const { pathToFileURL } = require('node:url') as typeof import('node:url');
      const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
      const api = typeof resolve === 'function' ? resolve('tsx/esm/api') : 'tsx/esm/api';
      const src = `(async () => { const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(pathToFileURL(file).href)}); })();`;
      worker = new Worker(src, { eval: true });
    } else worker = new Worker(file);
  } catch {
    workerFailed = true;
    return undefined;
  }
  worker.unref();
  worker.on('message', (m: WorkerReply) => {
    const job = jobs.get(m.id);
    if (!job) return;
    jobs.delete(m.id);
    if (m.ok) job.resolve(m.image!);
    else job.reject(new AglmError((m.code as 'INVALID_IMAGE') ?? 'INVALID_IMAGE', m.message ?? 'the image could not be read'));
    if (jobs.size === 0) worker?.unref();
  });
  const fail = (e: unknown) => {
    const err = new AglmError('INVALID_IMAGE', `The image worker stopped: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    for (const j of jobs.values()) j.reject(err);
    jobs.clear();
    worker = undefined;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (jobs.size > 0) fail(new Error(`exit code ${code}`));
    worker = undefined;
  });
  return worker;
}

/**
 * Decodes and preprocesses an image on a worker thread (in this thread only where no worker can be started: a
 * bundler that dropped the worker's file).
 */
export async function loadImage(input: ImageInput, params: PreprocessParams, limits: ImageLimits = {}): Promise<PreprocessedImage> {
  const w = startWorker();
  if (!w) return preprocessImage(await decodeImage(input, limits), params);
  // Plain data only: a RawImage's typed array and Uint8Array inputs are copied (the caller keeps its buffers).
  const id = nextJob++;
  const p = new Promise<PreprocessedImage>((resolve, reject) => jobs.set(id, { resolve, reject }));
  w.ref();
  w.postMessage({
    id,
    input,
    limits: { maxBytes: limits.maxBytes, maxPixels: limits.maxPixels },
    params: { patchSize: params.patchSize, merge: params.merge, minPixels: params.minPixels, maxPixels: params.maxPixels, imageMean: [...params.imageMean], imageStd: [...params.imageStd] },
  });
  return p;
}
