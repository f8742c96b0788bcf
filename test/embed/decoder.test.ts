// model.embed() on a causal decoder (stories260K, llama): mean and last pooling against a reference pooled in float64
// from the hidden states context.evaluate({ hidden: 'all' }) returns, the default pooling, and agreement with
// llama.cpp's embeddings (node-llama-cpp 3.22.1: with no `llama.pooling_type` it returns the last token's state; a copy
// of the file with `llama.pooling_type = 1` makes it pool by mean). Skips the peer part if it cannot be installed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgufValueType, loadModel, readGguf, writeGguf } from '../../lib/index.js';
import { peerEmbeddings } from '../../bench/peer.js';
import { openPeerOrSkip } from '../peer/peer-harness.js';
import { defaultModelPath, maxAbsDiff } from '../helpers/fixtures.js';
import { poolReference } from './bert-reference.js';

const TEXTS = ['Once upon a time, there was a little girl named Lily.', 'Tim had a red ball.', 'The'];
// llama.cpp runs with node-llama-cpp's defaults (F16 KV cache, flash attention on the CPU): its hidden states differ
// from our F32 ones by ~3e-4 relative. Measured max |ours - peer| of the normalised embeddings: 4.0e-4 (last),
// 2.1e-4 (mean); bound 2e-3 per component and cosine >= 0.9999.
const PEER_TOLERANCE = 2e-3;

const dir = mkdtempSync(join(tmpdir(), 'aglm-embed-dec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of stories260K that says `llama.pooling_type = 1` (mean). */
async function meanPoolingCopy(): Promise<string> {
  const path = join(dir, 'stories-mean.gguf');
  const f = await readGguf(defaultModelPath);
  const bytes = readFileSync(defaultModelPath);
  await writeGguf(path, {
    metadata: [...f.metadata.entries(), { key: 'llama.pooling_type', type: GgufValueType.UINT32, value: 1 }],
    tensors: f.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: bytes.subarray(t.offset, t.offset + t.byteLength) })),
  });
  return path;
}

test('decoder: mean/last/cls embeddings are the pooled hidden states (float64 reference)', async (t) => {
  await using m = await loadModel(defaultModelPath);
  let worst = 0;
  for (const text of TEXTS) {
    const ids = m.tokenize(text);
    await using ctx = m.createContext({ contextSize: 64 });
    const h = await ctx.evaluate(ids, { hidden: 'all' });
    const rows = Array.from({ length: ids.length }, (_, i) => Float64Array.from(h.subarray(i * m.hiddenSize, (i + 1) * m.hiddenSize)));
    for (const pooling of ['mean', 'last', 'cls'] as const) {
      for (const normalize of [true, false]) {
        const [ours] = await m.embed(text, { pooling, normalize });
        worst = Math.max(worst, maxAbsDiff(ours, poolReference(rows, pooling, normalize)));
      }
    }
  }
  t.diagnostic(`max |embed - pooled hidden states| ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-6, `differs by ${worst}`);
});

test('decoder: default pooling is the last token, or what <arch>.pooling_type says', async () => {
  await using m = await loadModel(defaultModelPath);
  assert.deepEqual((await m.embed(TEXTS[0]))[0], (await m.embed(TEXTS[0], { pooling: 'last' }))[0]);
  await using mean = await loadModel(await meanPoolingCopy());
  assert.deepEqual((await mean.embed(TEXTS[0]))[0], (await mean.embed(TEXTS[0], { pooling: 'mean' }))[0]);
});

test('decoder: embed leaves the model usable and other contexts untouched', async () => {
  await using m = await loadModel(defaultModelPath);
  await using ctx = m.createContext({ contextSize: 64 });
  const ids = m.tokenize('Once upon a time');
  const before = await ctx.evaluate(ids, { logits: 'last' });
  await m.embed(TEXTS);
  assert.equal(ctx.position, ids.length);
  ctx.clear();
  assert.deepEqual(await ctx.evaluate(ids, { logits: 'last' }), before);
});

test('decoder embeddings agree with llama.cpp (node-llama-cpp 3.22.1)', { timeout: 15 * 60_000 }, async (t) => {
  const llama = await openPeerOrSkip(t);
  if (!llama) return;
  for (const [path, pooling] of [[defaultModelPath, 'last'], [await meanPoolingCopy(), 'mean']] as const) {
    await using m = await loadModel(path);
    const tokens = TEXTS.map((s) => Array.from(m.tokenize(s)));
    const peer = await peerEmbeddings(llama, path, tokens);
    let worst = 0;
    let minCos = 1;
    for (let i = 0; i < TEXTS.length; i++) {
      const [ours] = await m.embed(TEXTS[i], { pooling });
      const theirs = poolReference([peer[i]], 'cls');
      worst = Math.max(worst, maxAbsDiff(ours, theirs));
      let dot = 0;
      for (let k = 0; k < ours.length; k++) dot += ours[k] * theirs[k];
      minCos = Math.min(minCos, dot);
    }
    t.diagnostic(`${pooling} pooling: max |ours - llama.cpp| ${worst.toExponential(2)}, min cosine ${minCos.toFixed(9)}`);
    assert.ok(worst <= PEER_TOLERANCE, `${pooling}: max difference ${worst}`);
    assert.ok(minCos >= 0.9999, `${pooling}: cosine ${minCos}`);
  }
});

test('embed takes token-id arrays as they are (the same vector as the text that tokenizes to them)', async () => {
  await using model = await loadModel();
  const text = 'Once upon a time there was a cat';
  const [fromText, fromIds, fromArray] = await model.embed([text, model.tokenize(text), Array.from(model.tokenize(text))]);
  assert.deepEqual(fromIds, fromText);
  assert.deepEqual(fromArray, fromText);
  await assert.rejects(model.embed([[1, 99999]]), { code: 'INVALID_ARGUMENT', message: /texts\[0\]\[1\]/ });
  await assert.rejects(model.embed([{} as never]), { code: 'INVALID_ARGUMENT' });
});
