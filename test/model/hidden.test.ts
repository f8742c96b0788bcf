// context.evaluate(tokens, { hidden }) returns the hidden states after the final norm: multiplying them by the
// output matrix gives the logits evaluate() returns, rows follow 'last' / 'all' like logits, the KV cache advances
// the same way, and bad combinations are INVALID_ARGUMENT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModel, readGguf } from '../../lib/index.js';
import { defaultModelPath, logitsReference, maxAbsDiff, runnableVariants } from '../helpers/fixtures.js';

const ref = logitsReference();

/** The F32 output matrix of stories260K, [n_vocab][n_embd]. */
async function outputMatrix(): Promise<{ w: Float32Array; nEmbd: number; nVocab: number }> {
  const gguf = await readGguf(defaultModelPath);
  const t = gguf.tensor('output.weight')!;
  assert.equal(t.type, 0, 'stories260K stores output.weight as F32');
  const bytes = readFileSync(defaultModelPath).subarray(t.offset, t.offset + t.byteLength);
  return { w: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), nEmbd: t.dims[0], nVocab: t.dims[1] };
}

for (const variant of runnableVariants()) {
  test(`hidden states times the output matrix are the logits (${variant})`, async () => {
    const { w, nEmbd, nVocab } = await outputMatrix();
    await using model = await loadModel(undefined, { cpuVariant: variant });
    assert.equal(model.hiddenSize, nEmbd);
    await using ctx = model.createContext({ contextSize: 128, batchSize: 16 });
    const hidden = await ctx.evaluate(ref.tokens, { hidden: 'all' });
    assert.equal(hidden.length, ref.tokens.length * nEmbd);
    assert.equal(ctx.position, ref.tokens.length);
    const logits = new Float32Array(ref.tokens.length * nVocab);
    for (let t = 0; t < ref.tokens.length; t++) {
      for (let r = 0; r < nVocab; r++) {
        let s = 0;
        for (let i = 0; i < nEmbd; i++) s += hidden[t * nEmbd + i] * w[r * nEmbd + i];
        logits[t * nVocab + r] = s;
      }
    }
    const diff = maxAbsDiff(logits, ref.logits);
    assert.ok(diff < 1e-4, `max |diff| ${diff}`);
  });
}

test("hidden: 'last' is the last row of 'all' and advances the context like logits", async () => {
  await using model = await loadModel();
  await using a = model.createContext({ contextSize: 128 });
  await using b = model.createContext({ contextSize: 128 });
  const all = await a.evaluate(ref.tokens.slice(0, 20), { hidden: 'all' });
  const last = await b.evaluate(ref.tokens.slice(0, 20), { hidden: 'last' });
  assert.equal(last.length, model.hiddenSize);
  assert.ok(maxAbsDiff(last, all.subarray(all.length - model.hiddenSize)) < 1e-5);
  // The cache written while computing hidden states serves later logits.
  const next = await b.evaluate([ref.tokens[20]], { logits: 'last' });
  assert.ok(maxAbsDiff(next, ref.logits.subarray(20 * ref.nVocab, 21 * ref.nVocab)) < 1e-4);
});

test('hidden option errors', async () => {
  await using model = await loadModel();
  await using ctx = model.createContext({ contextSize: 16 });
  await assert.rejects(ctx.evaluate([1], { hidden: 'all', logits: 'all' }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(ctx.evaluate([1], { hidden: 'none' as never }), { code: 'INVALID_ARGUMENT' });
  assert.equal(ctx.position, 0);
});
