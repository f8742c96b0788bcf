// Images through the library: preprocessing and the vision encoder against llama.cpp's mtmd reference outputs kept in
// test/fixtures/vision/mtmd-reference.json (made by test/helpers/mtmd-ref from the llama.cpp bundled in
// node-llama-cpp 3.22.1, on the same writer-generated models and images; test/vision/mtmd-numerics.test.ts runs
// mtmd itself), and the API around images: content parts in generate() and chat sessions, the image cache (a second
// question about the same screenshot neither encodes nor evaluates it again), and typed errors for bad input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type Model } from '../../lib/index.js';
import { GgmlType } from '../../lib/gguf/index.js';
import { decodeImage, preprocessImage, smartResize } from '../../lib/vision/image.js';
import { repoRoot } from '../helpers/fixtures.js';
import { diffStats, testPixels, writeJpeg, writePng, writeVisionPair, type VisionPair } from '../helpers/vision.js';

interface RefCase {
  pair: 'f32' | 'f16';
  width: number;
  height: number;
  kind: 'gradient' | 'screen';
  resized: [number, number];
  grid: [number, number];
  tokens: number;
  pixelsSha256: string;
  embd?: string;
  greedy?: number[];
  textTokens?: number[][];
}
const REF = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'vision', 'mtmd-reference.json'), 'utf8')) as { cases: Record<string, RefCase> };

let dir = '';
const pairs: Record<string, VisionPair> = {};
const models: Record<string, Model> = {};
const images: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aglm-vision-'));
  pairs.f32 = await writeVisionPair(dir, 'f32');
  pairs.f16 = await writeVisionPair(dir, 'f16', { type: GgmlType.F16, convType: GgmlType.F16, seed: 3 });
  for (const [name, c] of Object.entries(REF.cases)) {
    images[name] = join(dir, `${name}.png`);
    writePng(images[name], c.width, c.height, testPixels(c.width, c.height, c.kind, c.width * 31 + c.height));
  }
  models.f32 = await loadModel(pairs.f32.text, { projector: pairs.f32.projector });
  models.f16 = await loadModel(pairs.f16.text, { projector: pairs.f16.projector });
});

after(() => {
  for (const m of Object.values(models)) m.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("preprocessing equals llama.cpp's: resized size, patch grid and every normalised pixel (PNG, incl. 1080x2400 both ways)", async () => {
  for (const [name, c] of Object.entries(REF.cases)) {
    const vision = models[c.pair].vision!;
    const img = preprocessImage(await decodeImage(images[name]), vision.hparams);
    assert.deepEqual([img.width, img.height], c.resized, `${name}: resized size`);
    assert.deepEqual([img.px / 2, img.py / 2], c.grid, `${name}: token grid`);
    const sha = createHash('sha256').update(new Uint8Array(img.chw.buffer, img.chw.byteOffset, img.chw.byteLength)).digest('hex');
    assert.equal(sha, c.pixelsSha256, `${name}: the pixel tensor differs from llama.cpp's`);
  }
});

test('smart resize: multiples of 28 within 8..4096 tokens, aspect kept; raw RGBA, PNG and JPEG inputs decode to the same pixels', async () => {
  for (const [w, h] of [[1080, 2400], [2400, 1080], [1, 1], [5000, 20], [20, 5000], [8000, 8000], [28, 28], [70, 70], [1179, 2556]]) {
    const s = smartResize(w, h, 28, 8 * 784, 4096 * 784);
    assert.ok(s.width % 28 === 0 && s.height % 28 === 0, `${w}x${h} -> ${s.width}x${s.height}`);
    assert.ok(s.width * s.height <= 4096 * 784, `${w}x${h}: ${s.width * s.height} pixels`);
    assert.ok(s.width * s.height >= 8 * 784 || (w / h > 100 || h / w > 100), `${w}x${h}: ${s.width * s.height} pixels`);
    if (w / h < 10 && h / w < 10) assert.ok(Math.abs(Math.log((s.width / s.height) / (w / h))) < 0.15, `${w}x${h} -> ${s.width}x${s.height}: aspect`);
  }
  // 1080 x 2400 (a phone): 1092 x 2408, 78 x 172 patches, 3354 tokens (as llama.cpp: the fixture).
  assert.deepEqual(smartResize(1080, 2400, 28, 8 * 784, 4096 * 784), { width: 1092, height: 2408 });
  const rgba = testPixels(64, 48, 'gradient', 5);
  const png = join(dir, 'small.png');
  writePng(png, 64, 48, rgba);
  const a = await decodeImage(png);
  const b = await decodeImage(readFileSync(png));
  const c = await decodeImage(`data:image/png;base64,${readFileSync(png).toString('base64')}`);
  const d = await decodeImage({ width: 64, height: 48, data: rgba });
  for (const x of [b, c, d]) assert.deepEqual(x, a);
  const jpg = join(dir, 'small.jpg');
  writeJpeg(jpg, 64, 48, rgba, 95);
  const j = await decodeImage(jpg);
  assert.deepEqual([j.width, j.height], [64, 48]);
  const st = diffStats(j.rgb, a.rgb);
  assert.ok(st.mean < 4, `JPEG q95 decodes near the original (mean level diff ${st.mean})`);
});

test("the vision encoder's image rows and the greedy tokens after an image equal llama.cpp's (F32 and F16 models)", async () => {
  for (const [name, c] of Object.entries(REF.cases)) {
    if (!c.embd) continue;
    const model = models[c.pair];
    const ref = new Float32Array(new Uint8Array(Buffer.from(c.embd, 'base64')).buffer);
    const emb = await model.encodeImage(images[name]);
    assert.equal(emb.nTokens, c.tokens);
    assert.deepEqual([emb.nx, emb.ny], c.grid);
    const d = diffStats(emb.data, ref);
    assert.ok(d.max <= 1e-2 * d.scale, `${name}: image rows differ by ${d.max} (max |ref| ${d.scale})`);
    const r = await model.complete([{ type: 'text', text: 'Describe ' }, { type: 'image', image: images[name] }, { type: 'text', text: ' briefly.' }], { maxTokens: c.greedy!.length, temperature: 0 });
    assert.deepEqual(r.tokens, c.greedy, `${name}: greedy tokens`);
  }
});

test('the same image in any form is encoded once; sequence.generate and model.generate take content parts', async () => {
  const model = models.f32;
  const vision = model.vision!;
  const path = join(dir, 'cache.png');
  writePng(path, 90, 60, testPixels(90, 60, 'gradient', 77));
  const before = vision.encodes;
  const e1 = await model.encodeImage(path);
  const e2 = await model.encodeImage(readFileSync(path));
  const e3 = await model.encodeImage(`data:image/png;base64,${readFileSync(path).toString('base64')}`);
  assert.equal(vision.encodes, before + 1);
  assert.equal(e1, e2);
  assert.equal(e1, e3);
  const parts = [{ type: 'image' as const, image: path }, { type: 'text' as const, text: 'What is this?' }];
  const want = await model.complete(parts, { maxTokens: 6, temperature: 0 });
  await using ctx = model.createContext({ contextSize: 512, sequences: 2 });
  const seq = ctx.createSequence();
  const got: number[] = [];
  for await (const ch of seq.generate(parts, { maxTokens: 6, temperature: 0 })) if (ch.token >= 0) got.push(ch.token);
  assert.deepEqual(got, want.tokens);
  // Two sequences with different images at once give each its tokens alone.
  const other = join(dir, 'other.png');
  writePng(other, 60, 90, testPixels(60, 90, 'gradient', 78));
  const wantOther = await model.complete([{ type: 'image', image: other }, { type: 'text', text: 'What is this?' }], { maxTokens: 6, temperature: 0 });
  seq.clear();
  const s2 = ctx.createSequence();
  const [x, y] = await Promise.all([
    seq.complete(parts, { maxTokens: 6, temperature: 0 }),
    s2.complete([{ type: 'image', image: other }, { type: 'text', text: 'What is this?' }], { maxTokens: 6, temperature: 0 }),
  ]);
  assert.deepEqual(x.tokens, want.tokens);
  assert.deepEqual(y.tokens, wantOther.tokens);
  assert.equal(vision.encodes, before + 2);
});

test('a chat about a screenshot: the second question reuses the image (no encode, no evaluation of its tokens)', async () => {
  const model = models.f32;
  const vision = model.vision!;
  const shot = join(dir, 'shot.png');
  writePng(shot, 270, 600, testPixels(270, 600, 'screen', 9));
  await using chat = model.createChatSession({ contextSize: 2048, systemPrompt: 'You operate a phone.' });
  const rendered = model.applyChatTemplate([{ role: 'user', content: [{ type: 'image', image: shot }, { type: 'text', text: 'Open settings.' }] }]);
  assert.match(rendered, /<__media__>Open settings\./);
  const n0 = vision.encodes;
  await chat.prompt([{ type: 'image', image: shot }, { type: 'text', text: 'Open settings.' }], { maxTokens: 8, temperature: 0 });
  assert.equal(vision.encodes, n0 + 1);
  const first = chat.lastTurnStats!;
  const imageTokens = first.promptTokenIds.filter((id) => id >= 0x40000000).length;
  const emb = await model.encodeImage(shot); // (cached: no encode)
  assert.equal(imageTokens, emb.nTokens);
  assert.ok(imageTokens > 0);
  await chat.prompt('And then?', { maxTokens: 8, temperature: 0 });
  const second = chat.lastTurnStats!;
  assert.equal(vision.encodes, n0 + 1, 'the image was not encoded again');
  assert.ok(second.reusedTokens >= first.promptTokens, `reused ${second.reusedTokens} of the first turn's ${first.promptTokens} prompt tokens`);
  assert.ok(second.evaluatedTokens < imageTokens, `evaluated ${second.evaluatedTokens} tokens (the image has ${imageTokens})`);
  // The same conversation in a fresh session gives the same replies (the cache changed nothing).
  await using fresh = model.createChatSession({ contextSize: 2048, systemPrompt: 'You operate a phone.' });
  const history = chat.history;
  assert.deepEqual(history.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
  await fresh.prompt(history[1].content as never, { maxTokens: 8, temperature: 0 });
  const again = await fresh.prompt('And then?', { maxTokens: 8, temperature: 0 });
  assert.equal(again, history[4].content);
});

test('aborting an image encode stops it promptly; a caller sharing that encode still gets the rows', async () => {
  const model = models.f16;
  const vision = model.vision!;
  const big = images['png-1080x2400-screen'];
  // During the vision tower's evaluation (13,416 patches: seconds), with a second caller waiting on the same encode.
  const img = preprocessImage(await decodeImage(big), vision.hparams);
  const ac = new AbortController();
  const a = vision.encodePreprocessed(img, { signal: ac.signal });
  const b = vision.encodePreprocessed(img);
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  ac.abort(new Error('user'));
  await assert.rejects(a, { code: 'ABORTED' });
  const latency = performance.now() - t0;
  const rows = await b;
  assert.equal(rows.nTokens, REF.cases['png-1080x2400-screen'].tokens);
  assert.ok(latency < 1000, `abort took ${latency.toFixed(0)} ms`);
  // During decoding and preprocessing (on the image worker): the call rejects at once.
  const ac2 = new AbortController();
  const c = model.encodeImage(join(dir, 'big-again.png'), { signal: ac2.signal });
  writePng(join(dir, 'big-again.png'), 1080, 2400, testPixels(1080, 2400, 'screen', 99));
  ac2.abort();
  await assert.rejects(c, { code: 'ABORTED' });
});

test('bad images and image prompts get typed errors and lose nothing', async () => {
  const model = models.f32;
  const garbage = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await assert.rejects(model.encodeImage(garbage), { code: 'INVALID_IMAGE', message: /neither PNG nor JPEG/ });
  const truncated = readFileSync(images['png-150x97-gradient']).subarray(0, 200);
  await assert.rejects(model.encodeImage(truncated), { code: 'INVALID_IMAGE' });
  await assert.rejects(model.encodeImage('https://example.com/a.png'), { code: 'INVALID_IMAGE', message: /not fetched/ });
  await assert.rejects(model.encodeImage('data:image/png;base64,@@@'), { code: 'INVALID_IMAGE', message: /base64/ });
  await assert.rejects(model.encodeImage('data:text/plain;base64,aGVsbG8='), { code: 'INVALID_IMAGE', message: /not an image/ });
  await assert.rejects(model.encodeImage(join(dir, 'missing.png')), { code: 'FILE_NOT_FOUND' });
  await assert.rejects(model.encodeImage(images['png-150x97-gradient'], { maxPixels: 1000 }), { code: 'INVALID_IMAGE', message: /limit/ });
  await assert.rejects(model.encodeImage({ width: 10, height: 10, data: new Uint8Array(7) }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(async () => {
    for await (const _ of model.generate([{ type: 'image', image: garbage }], { maxTokens: 2 })) void _;
  }, { code: 'INVALID_IMAGE' });
  assert.throws(() => model.generate([{ type: 'video', video: 'x' } as never]), { code: 'INVALID_ARGUMENT' });
  // A model without a projector.
  await using plain = await loadModel(pairs.f32.text);
  await assert.rejects(plain.encodeImage(images['png-150x97-gradient']), { code: 'NO_PROJECTOR' });
  await assert.rejects(plain.complete([{ type: 'image', image: images['png-150x97-gradient'] }]), { code: 'NO_PROJECTOR' });
  await using chat = plain.createChatSession({ contextSize: 256 });
  await assert.rejects(chat.prompt([{ type: 'image', image: images['png-150x97-gradient'] }, { type: 'text', text: 'hi' }]), { code: 'NO_PROJECTOR' });
  assert.deepEqual(chat.history, [], 'the failed turn left nothing');
  // A projector that does not fit the text model; a projector path that is not one.
  await assert.rejects(loadModel(pairs.f32.text, { projector: pairs.f32.text }), { code: 'UNSUPPORTED_ARCH' });
  const wrongWidth = join(dir, 'wrong-mmproj.gguf');
  const { writeRandomGlm4vProjector } = await import('../../lib/tools/random-model.js');
  await writeRandomGlm4vProjector(wrongWidth, { embeddingLength: 32, blockCount: 1, headCount: 2, feedForwardLength: 32, textWidth: 96, mergerFeedForward: 64 });
  await assert.rejects(loadModel(pairs.f32.text, { projector: wrongWidth }), { code: 'GGUF_SHAPE_MISMATCH', message: /not a pair/ });
  // The model still answers.
  const r = await model.complete([{ type: 'image', image: images['png-150x97-gradient'] }, { type: 'text', text: 'ok' }], { maxTokens: 2, temperature: 0 });
  assert.equal(r.tokens.length, 2);
  writeFileSync(join(dir, 'done'), '');
});
