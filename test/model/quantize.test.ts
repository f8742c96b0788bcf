// `quantize` rewrites stories260K as F16, BF16, Q8_0 and Q4_0: each file loads, generates, and its logits stay within
// a tolerance of the F32 reference that follows from how precisely the type stores a weight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel, quantizeModel, readGguf, GgmlType } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { argmax, defaultModelPath, logitsReference, runnableVariants, tempDir } from '../helpers/fixtures.js';

const ref = logitsReference();

/**
 * Expected relative RMS error of a logit, per type: the RMS rounding error of one stored value relative to the RMS of
 * the values it stores. Float types round to nearest with unit roundoff u = 2^-p (F16 p = 11, BF16 p = 8), an RMS
 * relative error of about u/2 for each weight, and a forward pass of this size carries it through to the logits
 * nearly unchanged (measured here: F16 2.4e-4, BF16 2.0e-3). Q8_0 and Q4_0 round each block of 32 to steps of
 * amax/127 and amax/8: a uniform error of step/sqrt(12), about amax/2.5 for the block's RMS, gives 5.7e-3 and 9e-2;
 * Q8_0 also quantizes the activations on the fly (another 5.7e-3), so about 8e-3 (measured 8.7e-3) and, for Q4_0,
 * 9.5e-2 (measured 0.113). The test allows twice the estimate, so a real regression (a wrong scale, a dropped block,
 * a swapped nibble) fails by a wide margin while rounding noise passes. Argmax agreement is also checked: the
 * 8-bit and wider types agree on every row here; Q4_0 on 61 of 69.
 */
const CASES = [
  { type: 'f16', ggml: GgmlType.F16, relRms: 2 * 4.9e-4, argmaxAgree: 0.95 },
  { type: 'bf16', ggml: GgmlType.BF16, relRms: 2 * 3.9e-3, argmaxAgree: 0.95 },
  { type: 'q8_0', ggml: GgmlType.Q8_0, relRms: 2 * 8e-3, argmaxAgree: 0.95 },
  { type: 'q4_0', ggml: GgmlType.Q4_0, relRms: 2 * 9.5e-2, argmaxAgree: 0.8 },
] as const;

function relativeRms(a: Float32Array, b: Float32Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i] - b[i]) ** 2;
    s += b[i] ** 2;
  }
  return Math.sqrt(e / s);
}

for (const c of CASES) {
  test(`quantize to ${c.type}: loads, generates, logits within tolerance on every CPU variant`, async (t) => {
    const out = join(tempDir(t), `stories260K-${c.type}.gguf`);
    const io = { out: () => {}, err: (s: string) => assert.fail(s) };
    assert.equal(await main(['quantize', defaultModelPath, out, '--type', c.type], io), 0);
    const file = await readGguf(out);
    const types = new Set(file.tensors.map((x) => x.type));
    assert.ok(types.has(c.ggml), `the file has ${c.type} tensors`);
    assert.equal(file.tensor('blk.0.attn_norm.weight')!.type, GgmlType.F32, 'norm weights stay F32');
    for (const variant of runnableVariants()) {
      await using model = await loadModel(out, { cpuVariant: variant });
      await using ctx = model.createContext({ contextSize: 128 });
      const all = await ctx.evaluate(ref.tokens, { logits: 'all' });
      const rel = relativeRms(all, ref.logits);
      let agree = 0;
      for (let i = 0; i < ref.tokens.length; i++) {
        if (argmax(all, i * ref.nVocab, (i + 1) * ref.nVocab) === argmax(ref.logits, i * ref.nVocab, (i + 1) * ref.nVocab)) agree++;
      }
      t.diagnostic(`${c.type}/${variant}: relative RMS ${rel.toExponential(2)} (bound ${c.relRms.toExponential(2)}), argmax ${agree}/${ref.tokens.length}`);
      assert.ok(rel < c.relRms, `relative RMS error ${rel} >= ${c.relRms}`);
      assert.ok(agree >= c.argmaxAgree * ref.tokens.length, `argmax agreement ${agree}/${ref.tokens.length}`);
      const r = await model.complete('Once upon a time', { maxTokens: 24, temperature: 0 });
      assert.equal(r.tokens.length, 24);
      assert.match(r.text, /\w+/);
    }
  });
}

test('quantizeModel reports each tensor and falls back to F16 where a row does not fill whole blocks', async (t) => {
  const out = join(tempDir(t), 'q4.gguf');
  const report = await quantizeModel(defaultModelPath, out, 'q4_0');
  const down = report.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!;
  assert.equal(down.to, 'F16'); // 172 columns: not a multiple of 32
  assert.match(down.reason!, /172/);
  assert.equal(report.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!.to, 'Q4_0');
  assert.equal(report.tensors.find((x) => x.name === 'output.weight')!.to, 'Q8_0');
  assert.ok(report.outputBytes < report.inputBytes / 3);
});

test('quantize rejects an unknown type with a typed error', async () => {
  let err = '';
  const code = await main(['quantize', defaultModelPath, '/tmp/never.gguf', '--type', 'q3_z'], { out: () => {}, err: (s) => (err += s) });
  assert.equal(code, 1);
  assert.match(err, /INVALID_ARGUMENT/);
});
