// Vision test material: a tiny GLM-4.1V pair (glm4 text model with M-RoPE sections and GLM's control tokens on the
// gpt-2 vocabulary; a glm4v projector) written by the project's writer, and deterministic test images (PNG and JPEG
// encoded with pngjs / jpeg-js: gradients, noise, and a phone-screenshot-like layout of bars and "text" blocks).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { GgmlType, GgufValueType, readGguf } from '../../lib/gguf/index.js';
import { writeRandomGlm4vProjector, writeRandomModel } from '../../lib/tools/random-model.js';
import { FIXTURE_DIR } from '../tokenizer/load.js';

export const GLM_CONTROL_TOKENS = ['[gMASK]', '<sop>', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>', '<|begin_of_image|>', '<|end_of_image|>', '<|image|>'];

export interface VisionPair {
  text: string;
  projector: string;
  textWidth: number;
}

/** Writes the tiny pair into `dir`: matrices of `type` (F32 or F16), convolutions and merger of `convType`. */
export async function writeVisionPair(dir: string, name: string, options: { type?: number; convType?: number; seed?: number } = {}): Promise<VisionPair> {
  const textWidth = 128;
  const text = join(dir, `${name}-text.gguf`);
  const projector = join(dir, `${name}-mmproj.gguf`);
  const gpt2 = await readGguf(join(FIXTURE_DIR, 'ggml-vocab-gpt-2.gguf'));
  await writeRandomModel(
    text,
    { embeddingLength: textWidth, blockCount: 2, headCount: 2, headCountKv: 1, feedForwardLength: 256, vocabSize: 0, contextLength: 8192, tiedOutput: true },
    {
      arch: 'glm4',
      type: options.type ?? GgmlType.F32,
      seed: options.seed ?? 1,
      vocab: { entries: gpt2.metadata.entries(), addControlTokens: GLM_CONTROL_TOKENS },
      // 32 rotary dims = 16 pairs: temporal 4, height 6, width 6 (GLM-4.1V: 8, 12, 12 of 32).
      metadata: [{ key: 'glm4.rope.dimension_sections', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.INT32, items: Int32Array.from([4, 6, 6, 0]) } }],
    },
  );
  await writeRandomGlm4vProjector(
    projector,
    { embeddingLength: 64, blockCount: 2, headCount: 2, feedForwardLength: 96, textWidth, mergerFeedForward: 160 },
    { type: options.type ?? GgmlType.F32, convType: options.convType ?? GgmlType.F32, seed: (options.seed ?? 1) + 6 },
  );
  return { text, projector, textWidth };
}

/** RGBA pixels of a test image: 'gradient' (gradients and noise) or 'screen' (a phone screenshot's layout). */
export function testPixels(width: number, height: number, kind: 'gradient' | 'screen', seed = 1): Uint8Array {
  const px = new Uint8Array(width * height * 4);
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 24;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      if (kind === 'gradient') {
        px[i] = Math.floor((x * 255) / width);
        px[i + 1] = Math.floor((y * 255) / height);
        px[i + 2] = rnd();
      } else {
        // status bar, app bar, list rows with an icon and "text" strokes, a bottom navigation bar
        const bar = y < height * 0.04 ? 1 : y < height * 0.11 ? 2 : y > height * 0.93 ? 3 : 0;
        const row = Math.floor(y / (height * 0.08));
        let r = 250, g = 250, b = 250;
        if (bar === 1) (r = 30), (g = 30), (b = 30);
        else if (bar === 2) (r = 33), (g = 150), (b = 243);
        else if (bar === 3) (r = 240), (g = 240), (b = 240);
        else if (x > width * 0.05 && x < width * 0.17 && (y % (height * 0.08)) > height * 0.015 && (y % (height * 0.08)) < height * 0.065) {
          r = (row * 70) % 256;
          g = (row * 130 + 60) % 256;
          b = (row * 40 + 120) % 256;
        } else if (x > width * 0.22 && (y % (height * 0.08)) > height * 0.025 && (y % (height * 0.08)) < height * 0.04 && ((x >> 3) + row) % 5 !== 0) {
          r = g = b = 40 + (rnd() & 31);
        }
        px[i] = r;
        px[i + 1] = g;
        px[i + 2] = b;
      }
      px[i + 3] = 255;
    }
  }
  return px;
}

export function writePng(path: string, width: number, height: number, rgba: Uint8Array): void {
  const png = new PNG({ width, height });
  png.data.set(rgba);
  writeFileSync(path, PNG.sync.write(png));
}

export function writeJpeg(path: string, width: number, height: number, rgba: Uint8Array, quality = 90): void {
  const out = jpeg.encode({ data: Buffer.from(rgba), width, height }, quality);
  writeFileSync(path, out.data);
}

/** The largest |a - b| and the largest |b| (for a relative bound). */
export function diffStats(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; scale: number; mean: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0, scale = 0, sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]));
    sum += d;
  }
  return { max, scale, mean: sum / Math.max(1, a.length) };
}
