// perplexity(): equals an independent computation from raw logits, and orders the precisions as their rounding does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { perplexity } from '../../lib/tools/perplexity.js';
import { main } from '../../lib/cli/main.js';
import { repoRoot } from '../helpers/fixtures.js';

const textPath = join(repoRoot, 'test', 'fixtures', 'text', 'stories-eval.txt');
const text = readFileSync(textPath, 'utf8');

test('perplexity matches a direct computation from the logits of each chunk', async () => {
  await using model = await loadModel();
  const n = 128;
  const r = await perplexity(model, text, { contextSize: n });
  const tokens = model.tokenize(text, { addBos: false });
  let nll = 0;
  let count = 0;
  for (let c = 0; c + 1 <= tokens.length / n; c++) {
    const chunk = [...tokens.subarray(c * n, (c + 1) * n)];
    chunk[0] = 1; // BOS
    await using ctx = model.createContext({ contextSize: n });
    const logits = await ctx.evaluate(chunk, { logits: 'all' });
    for (let i = n / 2; i < n - 1; i++) {
      const row = Array.from(logits.subarray(i * 512, (i + 1) * 512));
      const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
      nll += lse - row[chunk[i + 1]];
      count++;
    }
  }
  assert.equal(r.scoredTokens, count);
  const expected = Math.exp(nll / count);
  assert.ok(Math.abs(r.perplexity - expected) < 1e-6 * expected, `${r.perplexity} vs ${expected}`);
  assert.ok(r.perplexity > 1 && r.perplexity < 10, `stories260K on a children's story: ${r.perplexity}`);
});

test('4-bit weights cost perplexity; 16- and 8-bit nearly none (CLI, --json)', async () => {
  const run = async (precision: string) => {
    let out = '';
    const code = await main(['perplexity', '--text', textPath, '--ctx', '256', '--precision', precision, '--json'], { out: (s) => (out += s), err: (s) => assert.fail(s) });
    assert.equal(code, 0);
    return JSON.parse(out).perplexity as number;
  };
  const f32 = await run('f32');
  const f16 = await run('f16');
  const q4 = await run('q4_0');
  assert.ok(Math.abs(f16 - f32) < 0.01 * f32, `f16 ${f16} vs f32 ${f32}`);
  assert.ok(q4 > f32 * 1.02, `q4_0 ${q4} vs f32 ${f32}`);
});
