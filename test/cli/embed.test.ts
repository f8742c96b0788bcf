// `open-autoglm embed`: JSON with one vector per text, equal to model.embed(); usage and bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../lib/cli/main.js';
import { loadModel } from '../../lib/index.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('embed prints model.embed() of each text as JSON', async () => {
  const r = await cli(['embed', '--pooling', 'mean', 'Once upon a time', 'Tim had a red ball.']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { pooling: string; dimensions: number; embeddings: number[][] };
  assert.equal(j.pooling, 'mean');
  await using m = await loadModel();
  const want = await m.embed(['Once upon a time', 'Tim had a red ball.'], { pooling: 'mean' });
  assert.equal(j.dimensions, m.hiddenSize);
  assert.deepEqual(j.embeddings, want.map((e) => Array.from(e)));
  const raw = JSON.parse((await cli(['embed', '--no-normalize', 'Tim'])).out) as { pooling: string; embeddings: number[][] };
  assert.equal(raw.pooling, 'last');
  assert.deepEqual(raw.embeddings[0], Array.from((await m.embed('Tim', { normalize: false }))[0]));
});

test('embed: no text is usage (exit 2), a bad pooling a typed error (exit 1)', async () => {
  assert.equal((await cli(['embed'])).code, 2);
  const r = await cli(['embed', '--pooling', 'max', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.err, /INVALID_ARGUMENT/);
});
