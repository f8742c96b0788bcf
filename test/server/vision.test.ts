// Images through the server, as the AutoGLM phone agent sends them: /v1/chat/completions with OpenAI's image_url parts
// holding base64 data: URIs, through the official openai client (streamed and not), answered exactly as the library's
// chat session answers the same messages at temperature 0. Remote URLs are refused with a 400 (the server fetches
// nothing), as are too many images, images that do not decode or are too large, and images sent to a model without a
// projector; the server keeps answering.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadModel, type Model } from '../../lib/index.js';
import { assertErrorShape, listen, postJson, type Listening } from '../helpers/server.js';
import { testPixels, writeJpeg, writePng, writeVisionPair, type VisionPair } from '../helpers/vision.js';

let dir = '';
let pair: VisionPair;
let model: Model;
let server: Listening;
let client: OpenAI;
let shotUri = '';
let jpegUri = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aglm-server-vision-'));
  pair = await writeVisionPair(dir, 'f32');
  model = await loadModel(pair.text, { projector: pair.projector });
  server = await listen(model, { parallel: 2, maxImages: 2, maxImageBytes: 2 << 20 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 });
  writePng(join(dir, 'shot.png'), 270, 600, testPixels(270, 600, 'screen', 4));
  shotUri = `data:image/png;base64,${readFileSync(join(dir, 'shot.png')).toString('base64')}`;
  writeJpeg(join(dir, 'shot.jpg'), 300, 200, testPixels(300, 200, 'gradient', 5));
  jpegUri = `data:image/jpeg;base64,${readFileSync(join(dir, 'shot.jpg')).toString('base64')}`;
});

after(async () => {
  await server?.close();
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const name = () => pair.text.split('/').pop()!.replace(/\.gguf$/, '');

test('image_url data URIs (PNG and JPEG): the reply equals the library chat session, streamed and not', async () => {
  for (const uri of [shotUri, jpegUri]) {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You operate a phone.' },
      { role: 'user', content: [{ type: 'text', text: 'Task: open settings. ' }, { type: 'image_url', image_url: { url: uri } }] },
    ];
    const r = await client.chat.completions.create({ model: name(), messages, max_tokens: 12, temperature: 0 });
    await using chat = model.createChatSession({ systemPrompt: 'You operate a phone.', contextSize: 2048 });
    const want = await chat.prompt([{ type: 'text', text: 'Task: open settings. ' }, { type: 'image', image: uri }], { maxTokens: 12, temperature: 0 });
    assert.equal(r.choices[0].message.content, want);
    assert.equal(r.usage!.prompt_tokens, chat.lastTurnStats!.promptTokens);
    const stream = await client.chat.completions.create({ model: name(), messages, max_tokens: 12, temperature: 0, stream: true });
    let text = '';
    for await (const ch of stream) text += ch.choices[0]?.delta.content ?? '';
    assert.equal(text, want);
  }
});

test('a second turn about the same screenshot reuses its cached tokens (usage.prompt_tokens_details.cached_tokens) and answers as without the cache', async () => {
  const vision = model.vision!;
  const turn1: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You operate a phone.' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: shotUri } }, { type: 'text', text: 'Where is the settings icon?' }] },
  ];
  const r1 = await client.chat.completions.create({ model: name(), messages: turn1, max_tokens: 10, temperature: 0 });
  const emb = await model.encodeImage(shotUri);
  const encodes = vision.encodes;
  const turn2: OpenAI.Chat.ChatCompletionMessageParam[] = [...turn1, { role: 'assistant', content: r1.choices[0].message.content }, { role: 'user', content: 'Tap it.' }];
  const r2 = await client.chat.completions.create({ model: name(), messages: turn2, max_tokens: 10, temperature: 0 });
  assert.equal(vision.encodes, encodes, 'the screenshot was not encoded again');
  const cached = r2.usage!.prompt_tokens_details!.cached_tokens!;
  assert.ok(cached >= r1.usage!.prompt_tokens, `cached ${cached} of the second turn's ${r2.usage!.prompt_tokens} prompt tokens (the first had ${r1.usage!.prompt_tokens}, the image ${emb.nTokens})`);
  assert.ok(cached < r2.usage!.prompt_tokens);
  const timings = (r2 as unknown as { timings: { cache_n: number; prompt_n: number } }).timings;
  assert.equal(timings.cache_n, cached);
  assert.equal(timings.prompt_n, r2.usage!.prompt_tokens - cached);
  // The same two requests to a server without a prompt cache give the same replies.
  const s2 = await listen(model, { parallel: 1, promptCache: 0 });
  try {
    const c2 = new OpenAI({ baseURL: `${s2.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 });
    const a1 = await c2.chat.completions.create({ model: name(), messages: turn1, max_tokens: 10, temperature: 0 });
    const a2 = await c2.chat.completions.create({ model: name(), messages: turn2, max_tokens: 10, temperature: 0 });
    assert.equal(a1.choices[0].message.content, r1.choices[0].message.content);
    assert.equal(a2.choices[0].message.content, r2.choices[0].message.content);
    assert.equal(a2.usage!.prompt_tokens_details!.cached_tokens, 0);
  } finally {
    await s2.close();
  }
});

test('refused with a 400 in OpenAI error shape: remote URLs, bad data URIs, undecodable or oversized images, too many images', async () => {
  const url = `/v1/chat/completions`;
  const ask = (content: unknown) => postJson(server.url, url, { model: name(), max_tokens: 2, messages: [{ role: 'user', content }] });
  const cases: [unknown, string][] = [
    [[{ type: 'image_url', image_url: { url: 'https://example.com/screen.png' } }], 'invalid_image_url'],
    [[{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }], 'invalid_image_url'],
    [[{ type: 'image_url', image_url: { url: 'data:text/plain;base64,aGk=' } }], 'invalid_image_url'],
    [[{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAAAAAA' } }], 'invalid_image'],
    [[{ type: 'image_url', image_url: {} }], 'invalid_type'],
    [[{ type: 'image_url', image_url: { url: shotUri } }, { type: 'image_url', image_url: { url: jpegUri } }, { type: 'image_url', image_url: { url: shotUri } }], 'too_many_images'],
    [[{ type: 'video_url', video_url: { url: shotUri } }], 'invalid_type'],
  ];
  for (const [content, code] of cases) {
    const r = await ask(content);
    assert.equal(r.status, 400, `${JSON.stringify(content).slice(0, 80)}: ${r.status} ${String(r.text).slice(0, 200)}`);
    assert.equal(assertErrorShape(r.json).code, code);
  }
  // Larger than maxImageBytes (2 MiB): a PNG of noise.
  const big = join(dir, 'big.png');
  const noise = new Uint8Array(1200 * 1200 * 4);
  let x = 2463534242;
  for (let i = 0; i < noise.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    noise[i] = x & 255;
  }
  writePng(big, 1200, 1200, noise);
  const bigUri = `data:image/png;base64,${readFileSync(big).toString('base64')}`;
  assert.ok(readFileSync(big).length > 2 << 20, `${readFileSync(big).length} bytes`);
  const r = await ask([{ type: 'image_url', image_url: { url: bigUri } }]);
  assert.equal(r.status, 400);
  assert.equal(assertErrorShape(r.json).code, 'invalid_image');
  // The server still answers an image request.
  const ok = await ask([{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: shotUri } }]);
  assert.equal(ok.status, 200);
});

test('a server whose model has no projector refuses image parts with 400 unsupported_content', async () => {
  await using plain = await loadModel(pair.text);
  const s = await listen(plain, { parallel: 1 });
  try {
    const r = await postJson(s.url, '/v1/chat/completions', { model: name(), max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: shotUri } }] }] });
    assert.equal(r.status, 400);
    assert.equal(assertErrorShape(r.json).code, 'unsupported_content');
    const ok = await postJson(s.url, '/v1/chat/completions', { model: name(), max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] });
    assert.equal(ok.status, 200);
  } finally {
    await s.close();
  }
});
