// GLM-4.1V vision against llama.cpp's mtmd, built from the llama.cpp source bundled in node-llama-cpp 3.22.1
// (test/helpers/mtmd-ref: libllama + libmtmd and a small driver that dumps what mtmd computes). On random-weight
// glm4v projectors and glm4 M-RoPE text models written by the project's writer (F32, and F16 with F16 convolutions as
// llama.cpp's converter writes them), for PNG and JPEG images of several sizes including a 1080 x 2400 phone
// screenshot:
// - preprocessing: the same resized size (patch grid) and the same normalised pixel tensor: PNG exactly (our decoder
//   and stb_image agree on PNG), JPEG within the decoders' differences (IDCT and chroma upsampling: jpeg-js is not
//   stb_image), bounded below and reported;
// - the image's rows (mtmd_encode_chunk's output) from the same pixels within 1 % of their largest magnitude;
// - the logits at every text position of "Describe <image> briefly." within 0.03 (logits are ~5 in size), and the
//   greedy continuation's tokens equal.
// Skips with the reason when mtmd-ref cannot be built (no cmake, no compiler, the peer package not installable).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { GgmlType } from '../../lib/gguf/index.js';
import { alignedFloat32 } from '../../lib/buffers/aligned.js';
import { decodeImage, preprocessImage, type PreprocessedImage } from '../../lib/vision/image.js';
import { isMediaId } from '../../lib/vision/media.js';
import { partsToPrompt } from '../../lib/vision/prompt.js';
import { buildMtmdRef, runMtmdRef, type MtmdRefOutput } from '../helpers/mtmd-ref/build.js';
import { diffStats, testPixels, writeJpeg, writePng, writeVisionPair, type VisionPair } from '../helpers/vision.js';

const EMBD_REL_TOL = 1e-2;
const LOGITS_TOL = 3e-2;
/**
 * JPEG: the decoders differ by a few levels on some pixels (measured: at most 3 levels, 0.5 on average on a noisy
 * gradient, 0.06 on a screenshot); bounds: 8 levels and 1 level on average (a level is 1 / 255 / std ~ 0.015).
 */
const JPEG_PIXEL_TOL = 8 / 255 / 0.26;
const JPEG_MEAN_TOL = 1 / 255 / 0.26;

let bin: string | undefined;
let skip: string | undefined;
let dir = '';
const pairs: Record<string, VisionPair> = {};

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aglm-mtmd-'));
  const b = await buildMtmdRef({ log: (l) => process.env.AGLM_VERBOSE && console.log(l) });
  if (!b.ok) {
    skip = `llama.cpp's mtmd could not be built here: ${b.reason}`;
    return;
  }
  bin = b.bin;
  pairs.f32 = await writeVisionPair(dir, 'f32');
  pairs.f16 = await writeVisionPair(dir, 'f16', { type: GgmlType.F16, convType: GgmlType.F16, seed: 3 });
});

interface Case {
  name: string;
  pair: 'f32' | 'f16';
  width: number;
  height: number;
  kind: 'gradient' | 'screen';
  format: 'png' | 'jpeg';
}

const CASES: Case[] = [
  { name: 'PNG 150x97 gradient (F32)', pair: 'f32', width: 150, height: 97, kind: 'gradient', format: 'png' },
  { name: 'JPEG 320x200 gradient (F32)', pair: 'f32', width: 320, height: 200, kind: 'gradient', format: 'jpeg' },
  { name: 'PNG 20x12 (scaled up to the minimum) (F16)', pair: 'f16', width: 20, height: 12, kind: 'gradient', format: 'png' },
  { name: 'JPEG 720x1600 screenshot (F16)', pair: 'f16', width: 720, height: 1600, kind: 'screen', format: 'jpeg' },
  { name: 'PNG 1080x2400 phone screenshot (F16)', pair: 'f16', width: 1080, height: 2400, kind: 'screen', format: 'png' },
];

const PROMPT = 'Describe <__media__> briefly.';
const PARTS_TEXT = ['Describe ', ' briefly.'];

for (const c of CASES) {
  test(`mtmd: ${c.name}: pixels, patch grid, image rows, logits at every text position, greedy tokens`, { timeout: 900_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const pair = pairs[c.pair];
    const path = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '_')}.${c.format === 'png' ? 'png' : 'jpg'}`);
    const rgba = testPixels(c.width, c.height, c.kind, c.width * 31 + c.height);
    if (c.format === 'png') writePng(path, c.width, c.height, rgba);
    else writeJpeg(path, c.width, c.height, rgba, 90);
    const out = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '_')}-ref`);
    mkdirSync(out, { recursive: true });
    const ref: MtmdRefOutput = await runMtmdRef(bin!, { model: pair.text, mmproj: pair.projector, image: path, prompt: PROMPT, out, cacheType: 'f32', flashAttn: 'off', threads: 2, nPredict: 8, nCtx: 8192, nBatch: 8192 });

    await using model = await loadModel(pair.text, { projector: pair.projector });
    const vision = model.vision!;
    const img = preprocessImage(await decodeImage(path), vision.hparams);
    const refChunk = ref.meta.chunks.find((ch) => ch.type === 'image')!;
    const [, , h, w] = refChunk.pixels!.shape;
    // The patch grid.
    assert.deepEqual([img.width, img.height], [w, h], 'resized size');
    assert.deepEqual([img.px / 2, img.py / 2], [refChunk.grid!.x, refChunk.grid!.y], 'token grid');
    // The pixels.
    const refPixels = ref.media[0].pixels!;
    const px = diffStats(img.chw, refPixels);
    t.diagnostic(`${img.width}x${img.height} (${img.px}x${img.py} patches, ${(img.px * img.py) / 4} tokens): pixels max diff ${px.max.toExponential(2)}, mean ${px.mean.toExponential(2)}`);
    if (c.format === 'png') assert.ok(px.max <= 1e-6, `PNG pixels differ by ${px.max}`);
    else {
      assert.ok(px.max <= JPEG_PIXEL_TOL, `JPEG pixels differ by ${px.max} (bound ${JPEG_PIXEL_TOL})`);
      assert.ok(px.mean <= JPEG_MEAN_TOL, `JPEG pixels differ by ${px.mean} on average (bound ${JPEG_MEAN_TOL})`);
    }
    // The image's rows, from llama.cpp's pixels (so that a JPEG decoder difference does not count here).
    const same: PreprocessedImage = { ...img, chw: refPixels, hash: `ref:${img.hash}` };
    const emb = await vision.encodePreprocessed(same);
    assert.equal(emb.nTokens, refChunk.n_tokens);
    // The image's M-RoPE positions as mtmd gives them: t constant, rows and columns of the token grid.
    const pos = ref.media[0].positions;
    const n = emb.nTokens;
    for (let i = 0; i < n; i++) {
      const p0 = pos[0];
      assert.deepEqual([pos[i], pos[n + i], pos[2 * n + i]], [p0, p0 + Math.floor(i / emb.nx), p0 + (i % emb.nx)], `position of image token ${i}`);
    }
    const e = diffStats(emb.data, ref.media[0].embd);
    t.diagnostic(`image rows: ${emb.nTokens} x ${emb.width}, max diff ${e.max.toExponential(2)} of max |ref| ${e.scale.toFixed(3)} (relative ${(e.max / e.scale).toExponential(2)})`);
    assert.ok(e.max <= EMBD_REL_TOL * e.scale, `image rows differ by ${e.max} (bound ${EMBD_REL_TOL * e.scale})`);

    // The prompt's tokens and the logits at every text position.
    const prompt = await partsToPrompt([{ type: 'text', text: PARTS_TEXT[0] }, { type: 'image', image: path }, { type: 'text', text: PARTS_TEXT[1] }], model.tokenizer, async () => emb, true);
    const textIds = Array.from(prompt.tokens).filter((id) => !isMediaId(id));
    assert.deepEqual(textIds, ref.meta.chunks.filter((ch) => ch.type === 'text').flatMap((ch) => ch.tokens!), 'text tokens');
    assert.equal(prompt.tokens.length - textIds.length, refChunk.n_tokens);
    const nv = model.vocabSize;
    await using ctx = model.createContext({ contextSize: prompt.tokens.length + 16, batchSize: 512 });
    const seq = ctx.createSequence();
    const all = alignedFloat32(prompt.tokens.length * nv);
    await seq.evaluateInto(prompt.tokens, 'all', all, undefined, 'logits', [emb]);
    const rows = Array.from(prompt.tokens.keys()).filter((i) => !isMediaId(prompt.tokens[i]));
    assert.equal(ref.logits.length / nv, rows.length);
    let worst = 0;
    rows.forEach((i, r) => {
      const d = diffStats(all.subarray(i * nv, (i + 1) * nv), ref.logits.subarray(r * nv, (r + 1) * nv));
      worst = Math.max(worst, d.max);
    });
    t.diagnostic(`logits at ${rows.length} text positions: max diff ${worst.toExponential(2)}`);
    assert.ok(worst <= LOGITS_TOL, `logits differ by ${worst} (bound ${LOGITS_TOL})`);

    // Greedy continuation, through the public API (our own preprocessing; for JPEG the rows from our decoder).
    if (c.format === 'png') {
      const r = await model.complete([{ type: 'text', text: PARTS_TEXT[0] }, { type: 'image', image: path }, { type: 'text', text: PARTS_TEXT[1] }], { maxTokens: 8, temperature: 0 });
      assert.deepEqual(r.tokens, ref.meta.generation.tokens, 'greedy tokens');
    }
  });
}
